"""A customer built through real flows, with data in every personal section: shared by the
删除客户个人信息 and 查阅复制 scenarios."""

from __future__ import annotations

from tests.support.commerce import paid, post_settled, signed_visit
from tests.support.kf import customer_writes
from tests.support.sidebar import sign_in
from tests.support.stack import Stack

NAME = "抹除标记姓名甲"
UNIONID = "oERASEMARKunion0001"
NOTE = "抹除标记跟进记录乙"
FIELD = "ERASEMARK-CARD-7731"
KF_TEXT = "抹除标记客服消息丙"


async def build(stack: Stack) -> str:
    """A customer of acme (through lina's channel code) with something in every personal
    table: a pre-tag by unionid, tags, 客户资料 member_card, birthday 03-14, a note, a 微信客服
    message, a credited order ERASE-O1 and a card visit of SKU2; their external_userid."""
    status, body = await stack.admin("/pretags", method="POST", json={
        "key": "erase-1", "lines": [{"unionid": UNIONID, "tags": ["护肤兴趣"]}]})
    assert status == 201, body
    status, code = await stack.admin("/channels", method="POST", json={
        "guide": "lina", "store": "S01", "tags": ["门店扫码"]})
    assert status == 201, code
    added = await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"],
                                                     name=NAME, unionid=UNIONID)
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    status, card = await stack.admin(f"/customers/{customer}")
    assert status == 200 and card["name"] == NAME and card["tags"], card
    status, body = await stack.admin(f"/customers/{customer}/fields", method="PUT",
                                     json={"values": {"member_card": FIELD}})
    assert status == 200, body
    status, body = await stack.admin(f"/customers/{customer}/birthday", method="PUT",
                                     json={"birthday": "03-14"})
    assert status == 200, body
    guide = await sign_in(stack, "lina")
    assert (await guide.post(f"/customer/{customer}/notes", {"text": NOTE}))[0] == 201
    await guide.http.close()
    await customer_writes(stack, customer, KF_TEXT)
    status, order = await post_settled(stack, paid("ERASE-O1", customer=customer,
                                                   unionid=UNIONID))
    assert status == 200 and order["guide"] == "lina", order
    status, link = await stack.admin("/links", method="POST", json={
        "guide": "lina", "sku": "SKU2", "title": "x", "customer": customer})
    assert status == 201, link
    async with stack.http.get(f"{stack.bot_url}/t/{link['token']}", params=signed_visit(
            stack, link["token"], external_userid=customer, unionid=UNIONID)) as resp:
        assert resp.status == 204
    await stack.runtime.drain()
    return customer


async def guide_deletes(stack: Stack, customer: str) -> None:
    """The customer deletes lina (del_follow_user): the relation ends."""
    await stack.sandbox.simulate_event("acme", {
        "Event": "change_external_contact", "ChangeType": "del_follow_user",
        "UserID": "lina", "ExternalUserID": customer})
    await stack.runtime.drain()
