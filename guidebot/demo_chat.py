"""The demo's chat chapter, without an LLM (the rule, FAQ and catalog paths): a customer asks
微信客服 about a product at night and gets its price and a tracked card, asks for a person and
reaches their own guide, and that guide asks guidebot for their month's figures and for
replies to suggest — all through the sandbox's callbacks and guidebot's real handlers."""

from __future__ import annotations

import itertools
import json
from typing import Any

import aiohttp

QUESTION = "丝绒哑光口红多少钱？"
FOR_A_PERSON = "可以帮我转人工吗"
GUIDE_ASKS = ("业绩", "建议 口红多少钱？可以退货吗")
FIRST_MSGID = 8_100_001  # of the guide's app messages: the same ids on every run


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Any:
    async with http.post(url, json=body) as resp:
        return await resp.json()


async def _calls(http: aiohttp.ClientSession, ctx: Any, path: str) -> list[dict[str, Any]]:
    async with http.get(f"{ctx.sandbox_url}/_sandbox/calls",
                        params={"tenant": ctx.tenant, "path": path}) as resp:
        return list((await resp.json())["calls"])


async def story(ctx: Any) -> None:
    from guidebot.app import RUNTIME

    drain = ctx.app[RUNTIME].drain
    kfids = ctx.settings.tenant(ctx.tenant).kf.open_kfids
    if not kfids:
        ctx.out(f"Chat: no 微信客服 account configured ([tenants.{ctx.tenant}.kf] open_kfids); "
                "the chat chapter is skipped.")
        return
    customer = ctx.customers[0]
    who, guide, kfid = customer["external_userid"], customer["guide"], kfids[0]
    sandbox = f"{ctx.sandbox_url}/_sandbox/{ctx.tenant}"
    async with aiohttp.ClientSession() as http:
        async def writes(text: str) -> list[dict[str, Any]]:
            """The customer writes to 微信客服; what guidebot sent back (kf/send_msg)."""
            before = len(await _calls(http, ctx, "kf/send_msg"))
            await _post(http, f"{sandbox}/simulate/kf_message",
                        {"open_kfid": kfid, "external_userid": who, "text": text})
            await drain()
            return [c["body"] for c in (await _calls(http, ctx, "kf/send_msg"))[before:]]

        ctx.out(f"Chat (微信客服 {kfid}, no LLM configured: rules, FAQ and catalog answer):")
        ctx.out(f"  at night, after the store has closed, {customer['name']} writes: {QUESTION}")
        for sent in await writes(QUESTION):
            if sent["msgtype"] == "text":
                ctx.out(f"    guidebot replies: {sent['text']['content']}")
            else:
                card = sent["miniprogram"]
                page = card["pagepath"].split("&t=")[0]
                ctx.out(f"    and a {sent['msgtype']} card: {card['title']} → {page} "
                        f"(tracked for {guide})")
        ctx.out(f"  {customer['name']} writes: {FOR_A_PERSON}")
        trans_before = len(await _calls(http, ctx, "kf/service_state/trans"))
        notes_before = len(await _calls(http, ctx, "message/send"))
        for sent in await writes(FOR_A_PERSON):
            ctx.out(f"    guidebot replies: {sent['text']['content']}")
        for trans in (await _calls(http, ctx, "kf/service_state/trans"))[trans_before:]:
            body = trans["body"]
            if body["service_state"] == 3:
                ctx.out(f"    handed to their own guide: kf/service_state/trans → state "
                        f"3, servicer {body['servicer_userid']}")
        for note in (await _calls(http, ctx, "message/send"))[notes_before:]:
            card = note["body"].get("textcard") or {}
            ctx.out(f"    {note['body']['touser']}'s app message: {card.get('title', '')}")
            for line in str(card.get("description", "")).splitlines():
                ctx.out(f"      {line}")
        agent_id = ctx.settings.tenant(ctx.tenant).agent_id
        msgids = itertools.count(FIRST_MSGID)
        for text in GUIDE_ASKS:
            before = len(await _calls(http, ctx, "message/send"))
            await _post(http, f"{sandbox}/simulate/event", {"fields": {
                "MsgType": "text", "FromUserName": guide, "Content": text,
                "MsgId": str(next(msgids)), "AgentID": str(agent_id)}})
            await drain()
            ctx.out(f"  {guide} writes to the guidebot app: {text}")
            for answer in (await _calls(http, ctx, "message/send"))[before:]:
                body = answer["body"]
                if body["touser"] == guide and body["msgtype"] == "text":
                    for line in body["text"]["content"].splitlines():
                        ctx.out(f"    {line}")
        async with http.get(f"{sandbox}/kf") as resp:
            state = json.loads(await resp.text())
    session = next(s for s in state["sessions"] if s["external_userid"] == who)
    ctx.out(f"  the session is now with {session['servicer_userid'] or '-'} (state "
            f"{session['service_state']}): guidebot stays quiet until it ends")
