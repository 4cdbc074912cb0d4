"""A crash between the inbox write and processing: the item is replayed at the next start."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from guidebot.app import RUNTIME, create_app
from tests.support.stack import FAST_BACKOFF, start_stack


async def test_unprocessed_item_is_replayed_once_after_restart(
        aiohttp_server, tmp_path: Path, db_url: str) -> None:  # type: ignore[no-untyped-def]
    # First process: accepts and stores callbacks but has no workers, like a crash right
    # after the 200 went out.
    stack = await start_stack(aiohttp_server, tmp_path, db_url, workers=0)
    try:
        added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="孙悦")
        assert added["delivery"]["status"] == 200
        rows = await stack.inbox_rows()
        assert len(rows) == 1 and rows[0].processed_at is None
        assert stack.calls("externalcontact/send_welcome_msg") == []
        await stack.app.shutdown()
        await stack.app.cleanup()

        # Second process on the same database: replays at start.
        app = create_app(replace(stack.settings), start_jobs=False, backoff=FAST_BACKOFF)
        await aiohttp_server(app)
        await app[RUNTIME].drain()
        async with app[RUNTIME].services.db.read() as s:
            from sqlalchemy import select

            from guidebot.db.models import Follow, InboxItem

            items = list((await s.execute(select(InboxItem))).scalars())
            follows = list((await s.execute(select(Follow))).scalars())
        assert [i.outcome for i in items] == ["on_contact_added"]
        assert [(f.guide, f.external_userid) for f in follows] == [
            ("lina", added["external_userid"])]
        welcomes = stack.calls("externalcontact/send_welcome_msg")
        assert [w["body"]["welcome_code"] for w in welcomes] == [added["welcome_code"]]
    finally:
        await stack.http.close()
