"""Customer groups in tests: a customer added through the sandbox, and a leaver's group."""

from __future__ import annotations

from tests.support.stack import Stack


async def add_customer(stack: Stack, guide: str, name: str) -> str:
    """A customer who adds `guide`, handled: their external_userid."""
    added = await stack.sandbox.simulate_add_contact("acme", userid=guide, name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def leavers_group(stack: Stack) -> tuple[str, str]:
    """ahui's group with one customer, then ahui leaves (qing stays, an active guide):
    (the customer, the group's chat_id)."""
    customer = await add_customer(stack, "ahui", "王芳")
    await add_customer(stack, "qing", "韩梅")
    created = await stack.sandbox.create_group("acme", "ahui", name="阿辉的群",
                                               members=[customer])
    await stack.sandbox.set_directory("acme", {
        "departments": [{"id": 1, "name": "acme", "parentid": 0}],
        "members": [{"userid": "ahui", "name": "陈阿辉", "department": [1], "status": 5},
                    {"userid": "qing", "name": "王青", "department": [1]}]}, deliver=True)
    await stack.runtime.drain()
    return customer, str(created["chat_id"])
