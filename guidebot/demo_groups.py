"""The demo's customer groups and transfers chapter: a guide's customer group (created,
a customer joining by its QR code, one leaving) read back from WeCom's callbacks as the
console's 客户群 page shows it, the group welcome template created in WeCom, and an on-job
transfer (在职继承) of one guide's customer to another, waiting for WeCom's 24 hours as the
客户继承 page shows it."""

from __future__ import annotations

from typing import Any

from guidebot.db.repo import sop_plan
from guidebot.demo import demo_external_userid


async def story(ctx: Any) -> None:
    from guidebot.app import RUNTIME

    runtime = ctx.app[RUNTIME]
    services = runtime.services
    first, second, third, fourth = (demo_external_userid(n) for n in (1, 2, 3, 4))
    created = await ctx.sandbox.create_group(ctx.tenant, "lina", name="静安嘉里会员群",
                                             members=[first, second])
    chat = str(created["chat_id"])
    await ctx.sandbox.join_group(ctx.tenant, chat, [third], join_scene=3)
    await ctx.sandbox.quit_group(ctx.tenant, chat, [second])
    await runtime.drain()
    group = await services.groups.detail_view(ctx.tenant, chat)
    customers = [m for m in group["members"] if m["kind"] == "customer"]
    ctx.out(f"Customer groups: 李娜's group {group['name']} (change_external_chat read back "
            f"with groupchat/get): {group['customers']} customers in it now; "
            f"{len(customers)} have joined (one by its QR code), "
            f"{sum(1 for m in customers if m['left_at'])} left; the console's 客户群 page "
            f"/console/{ctx.tenant}/groups")
    async with services.db.read() as s:
        nurtured = await sop_plan.customer_enrollments(s, tenant=ctx.tenant,
                                                       external_userid=chat)
    ctx.out(f"Group SOP (群SOP): the new group joined "
            f"{'、'.join(services.library.sops[e.sop_id].title for e in nurtured) or 'none'}"
            f" (its name holds 会员): 李娜 is asked to send it a welcome 10 minutes after it "
            f"was created and the week's new arrivals on day 3, each a 群发 to the group")
    made = await services.group_welcome.sync(ctx.tenant)
    ctx.out(f"Group welcome templates (入群欢迎语) from content_library/group_welcome.toml: "
            f"{made['added']} created in WeCom (group_welcome_template/add; owners choose "
            f"them for their groups); their WeCom ids on /console/{ctx.tenant}/content")
    batch = await services.transfers.start(ctx.tenant, kind="on_job", handover="zhaolei",
                                           takeover="chenjing", customers=[fourth])
    view_one = await services.transfers.view(ctx.tenant, batch)
    ctx.out(f"Customer transfer (在职继承): 赵磊's customer 周婷 handed to 陈静 "
            f"(transfer_customer): {view_one['states']['waiting']} waiting for WeCom's 24 "
            f"hours, checked with transfer_result every hour; the console's 客户继承 page "
            f"/console/{ctx.tenant}/transfers/{batch}")
