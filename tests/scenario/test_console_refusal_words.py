"""Console refusals read as sentences in the page's language naming the field as the form
labels it (客户分群, 业绩目标), never an internal field path; nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from guidebot.db.models import Guide, Store
from guidebot.db.models_segments import CustomerSegment
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack, start_stack


@pytest.fixture
async def stack(aiohttp_server: Any, tmp_path: Any, db_url: str):  # type: ignore[no-untyped-def]
    stack = await start_stack(aiohttp_server, tmp_path, db_url)
    yield stack
    await stack.http.close()


async def _segments(stack: Stack) -> int:
    async with stack.runtime.services.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(CustomerSegment)))
                   .scalar_one())


SEGMENT_CASES = [
    ([("name", "坏"), ("added_from", "2026-05-02"), ("added_to", "2026-05-01")],
     "客户分群未保存：「添加日期」的开始不能晚于结束。",
     "The segment was not saved: the start of “Added” must not be after its end."),
    ([("name", "坏"), ("added_days", "0")],
     "客户分群未保存：「最近 N 天内添加（含今天）」须为 1 到 3650 之间的整数天数。",
     "must be a whole number of days, 1 to 3650."),
    ([("name", "坏"), ("quiet_days", "99999")],
     "客户分群未保存：「最近一次购买在 N 天以前」须为 1 到 3650 之间的整数天数。",
     "must be a whole number of days, 1 to 3650."),
    ([("name", " ")], "客户分群未保存：请填写分群名称（最多 64 个字）。",
     "The segment was not saved: give it a name (at most 64 characters)."),
]


@pytest.mark.parametrize(("form", "zh", "en"), SEGMENT_CASES)
async def test_a_refused_segment_names_the_form_field(stack: Stack, form: list[Any], zh: str,
                                                      en: str) -> None:
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        _, html, _ = await console.get("/console/acme/segments/new")
        for lang, words in (("zh-CN", zh), ("en", en)):
            status, page, _ = await console.post(
                f"/console/acme/segments?lang={lang}",
                [("_csrf", csrf_in(html)), *form])  # type: ignore[arg-type]
            assert status == 400 and words in page, page
            assert "conditions." not in page and "name（" not in page
        assert await _segments(stack) == 0
    finally:
        await console.close()


async def test_a_refused_target_names_the_guide_and_the_column(stack: Stack) -> None:
    async with stack.runtime.services.db.write() as s:
        s.add_all([Store(tenant="acme", store_id="S01", name="静安店"),
                   Guide(tenant="acme", userid="lina", name="李娜", store_id="S01")])
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        _, html, _ = await console.get("/console/acme/targets?period=2026-05")
        for value in (",", "-5"):
            status, page, _ = await console.post("/console/acme/targets?lang=zh-CN", {
                "_csrf": csrf_in(html), "period": "2026-05", "guides.lina.gmv": value})
            assert status == 400 and "李娜的GMV目标须为不小于 0 的数字" in page, page
            assert "gmv_fen" not in page
            status, page, _ = await console.post("/console/acme/targets?lang=en", {
                "_csrf": csrf_in(html), "period": "2026-05", "guides.lina.adds": value})
            assert status == 400 and "李娜’s new customers target must be a whole number" in page
            assert "guides.lina" not in page
        # above the most: named too, GMV's most in yuan
        status, page, _ = await console.post("/console/acme/targets?lang=zh-CN", {
            "_csrf": csrf_in(html), "period": "2026-05", "guides.lina.gmv": "99999999999"})
        assert status == 400 and "李娜的GMV目标须在 ¥0 到 ¥10,000,000,000.00 之间" in page, page
        assert "gmv_fen" not in page
        status, page, _ = await console.post("/console/acme/targets?lang=en", {
            "_csrf": csrf_in(html), "period": "2026-05", "stores.S01.adds": "2000000"})
        assert status == 400 and "静安店’s new customers target must be from 0 to 1000000" in page
        assert "stores.S01" not in page
        _, after, _ = await console.get("/console/acme/targets?period=2026-05")
        assert 'value="-5"' not in after
    finally:
        await console.close()
