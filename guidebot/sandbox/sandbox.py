"""The Sandbox: every tenant's simulated WeCom corp plus tokens, faults, call log and callbacks."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from guidebot.sandbox import (
    acquisition,
    directory,
    group_transfers,
    groups,
    join_ways,
    massmsg,
    simulate,
    snapshot,
    tagbook,
    transfers,
)
from guidebot.sandbox import seed as seeding
from guidebot.sandbox.api import moments
from guidebot.sandbox.callbacks import encrypt, to_xml
from guidebot.sandbox.calllog import CallLog
from guidebot.sandbox.delivery import Deliverer, not_delivered
from guidebot.sandbox.errors import ApiError, ControlError
from guidebot.sandbox.faults import FaultBook
from guidebot.sandbox.limits import Interceptor
from guidebot.sandbox.models import JSON, Options
from guidebot.sandbox.tenant import TenantState, is_userid
from guidebot.sandbox.tokens import TokenBook
from guidebot.settings import Settings

log = logging.getLogger(__name__)


class Sandbox:
    def __init__(
        self, settings: Settings, *, callback_base: str | None = None,
        welcome_window_s: float = 20.0,
    ) -> None:
        self.options = Options(welcome_window_s=welcome_window_s)
        self.callback_base = (callback_base or settings.server.public_url).rstrip("/")
        self.tenants = {tid: TenantState(t) for tid, t in settings.tenants.items()}
        self.tokens = TokenBook(settings.tenants)
        self.faults = FaultBook()
        self.call_log = CallLog(self.options.calls_kept)
        self.interceptor = Interceptor()
        self.deliverer = Deliverer(self.options)
        self.clock_offset = 0.0

    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the sandbox clock (token expiry, welcome window, media life, quotas) forward.
        Due customer transfers and group inheritances settle at the next transfer or
        groupchat API call; `advance` (and the clock control route) also settles them at once
        and delivers their callbacks."""
        self.clock_offset += seconds

    async def advance(self, seconds: float, *, deliver: bool = True) -> JSON:
        """advance_clock, then settle every tenant's due transfers and group inheritances."""
        self.advance_clock(seconds)
        settled = {tenant_id: await self.settle_transfers(tenant_id, deliver=deliver)
                   for tenant_id in self.tenants}
        return {"now": self.now(), "deliveries": settled}

    async def settle_transfers(self, tenant_id: str, *, deliver: bool = True) -> list[JSON]:
        """Complete the tenant's customer transfers whose 24 hours are up (FACTS-next §D) and
        its groups' 离职继承 whose 24 hours are up (assumed, group_transfers.py), and deliver
        their callbacks in time order; the state changes before any await, so each settles
        once."""
        tenant, now = self.tenant(tenant_id), self.now()
        due = sorted([*transfers.settle(tenant, now), *group_transfers.settle(tenant, now)],
                     key=lambda fields: int(fields["CreateTime"]))
        return [(await self.emit(tenant_id, fields, deliver=deliver))[1] for fields in due]

    async def refuse_transfer(self, tenant_id: str, external_userid: str, takeover: str,
                              reason: object, *, deliver: bool = True) -> JSON:
        """The customer refuses a waiting on-job transfer: transfer_fail is called back."""
        await self.settle_transfers(tenant_id, deliver=deliver)  # a due one has completed
        fields = transfers.refuse(self.tenant(tenant_id), external_userid, takeover, reason)
        xml, delivery = await self.emit(tenant_id, fields, deliver=deliver)
        return {"xml": xml, "delivery": delivery}

    async def create_group(self, tenant_id: str, owner: str, *, name: str | None = None,
                           notice: str | None = None, members: list[str] | None = None,
                           chat_id: str | None = None, deliver: bool = True) -> JSON:
        """A member creates a customer group with the members and customers listed (ids of
        customers, or shaped like external_userids, are external contacts): create is called
        back (FACTS-next §C)."""
        fields = groups.create(self.tenant(tenant_id), self.now(), owner, name=name,
                               notice=notice, members=members, chat_id=chat_id)
        return await self._group_changed(tenant_id, fields, deliver)

    async def join_group(self, tenant_id: str, chat_id: str, members: list[str], *,
                         join_scene: int = 0, invitor: str | None = None,
                         deliver: bool = True) -> JSON:
        """Members or customers join a group (JoinScene 0 invited, 3 by its QR code):
        update/add_member is called back."""
        fields = groups.join(self.tenant(tenant_id), self.now(), chat_id, members, join_scene,
                             invitor)
        return await self._group_changed(tenant_id, fields, deliver)

    async def join_group_by_way(self, tenant_id: str, config_id: str, members: list[str], *,
                                deliver: bool = True) -> JSON:
        """Customers scan a 群活码 (a 加入群聊 way, join_ways.py): they join its first live
        group by QR code with the way's state; update/add_member is called back."""
        fields = join_ways.join(self.tenant(tenant_id), self.now(), config_id, members)
        return await self._group_changed(tenant_id, fields, deliver)

    async def quit_group(self, tenant_id: str, chat_id: str, members: list[str], *,
                         quit_scene: int = 0, deliver: bool = True) -> JSON:
        """Members or customers leave a group (QuitScene 0 themselves, 1 removed):
        update/del_member is called back."""
        fields = groups.quit_group(self.tenant(tenant_id), chat_id, members, quit_scene)
        return await self._group_changed(tenant_id, fields, deliver)

    async def change_group(self, tenant_id: str, chat_id: str, *, name: str | None = None,
                           notice: str | None = None, owner: str | None = None,
                           deliver: bool = True) -> JSON:
        """One of the group's name, notice or owner changes: update/change_name,
        change_notice or change_owner is called back."""
        fields = groups.change(self.tenant(tenant_id), chat_id, name=name, notice=notice,
                               owner=owner)
        return await self._group_changed(tenant_id, fields, deliver)

    async def dismiss_group(self, tenant_id: str, chat_id: str, *, deliver: bool = True
                            ) -> JSON:
        """The owner dismisses a group: dismiss is called back; the group cannot change after."""
        fields = groups.dismiss(self.tenant(tenant_id), chat_id)
        return await self._group_changed(tenant_id, fields, deliver)

    async def _group_changed(self, tenant_id: str, fields: JSON, deliver: bool) -> JSON:
        xml, delivery = await self.emit(tenant_id, fields, deliver=deliver)
        return {"chat_id": fields["ChatId"], "xml": xml, "delivery": delivery}

    def set_callback_base(self, url: str) -> None:
        self.callback_base = url.rstrip("/")

    def tenant(self, tenant_id: str) -> TenantState:
        found = self.tenants.get(tenant_id)
        if found is None:
            raise ControlError(404, f"unknown tenant {tenant_id!r}")
        return found

    def calls(self, tenant: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        return self.call_log.select(tenant, path)

    def state(self, tenant_id: str) -> JSON:
        return snapshot.tenant_json(self.tenant(tenant_id))

    def revoke_token(self, tenant_id: str) -> bool:
        return self.tokens.revoke(self.tenant(tenant_id).id)

    def confirm_groupmsg(self, tenant_id: str, msgid: str, userid: str) -> JSON:
        task = massmsg.confirm(self.tenant(tenant_id), msgid, userid, self.now())
        return {"userid": task.userid, "status": task.status, "send_time": task.send_time,
                "recipients": dict(task.recipients)}

    async def close(self) -> None:
        await self.deliverer.close()

    async def emit(self, tenant_id: str, fields: Mapping[str, Any], *, deliver: bool = True
                   ) -> tuple[str, JSON]:
        """Render `fields` (plus the usual header fields unless given) as callback XML and, if
        `deliver`, encrypt it and POST it to the bot. Returns (xml, delivery)."""
        tenant = self.tenant(tenant_id).settings
        header = {"ToUserName": tenant.corp_id, "FromUserName": "sys",
                  "CreateTime": int(self.now()), "MsgType": "event"}
        xml = to_xml({**header, **fields})
        if not deliver:
            return xml, not_delivered()
        url = f"{self.callback_base}/wecom/{tenant_id}/callback"
        delivery = await self.deliverer.post(url, encrypt(tenant, xml))
        log.info("tenant %s: callback %s/%s answered %s", tenant_id, fields.get("Event"),
                 fields.get("ChangeType"), delivery["status"])
        return xml, delivery

    async def simulate_add_contact(
        self, tenant: str, *, userid: str | None = None, state: str | None = None,
        config_id: str | None = None, external_userid: str | None = None,
        name: str | None = None, unionid: str | None = None, create_time: int | None = None,
        deliver: bool = True,
    ) -> JSON:
        request = {"userid": userid, "state": state, "config_id": config_id, "name": name,
                   "external_userid": external_userid, "unionid": unionid,
                   "create_time": create_time}
        return await self.add_contact(tenant, request, deliver=deliver)

    async def add_contact(self, tenant: str, request: Mapping[str, Any], *, deliver: bool) -> JSON:
        fields = simulate.add_contact(self.tenant(tenant), self.now(), request)
        return await self._added(tenant, fields, deliver)

    async def simulate_acquisition_add(
        self, tenant: str, url: str, *, userid: str | None = None,
        external_userid: str | None = None, name: str | None = None,
        unionid: str | None = None, deliver: bool = True,
    ) -> JSON:
        """A customer opens a 获客助手 link's url (with ?customer_channel=… or not) and adds the
        member it hands them to (`userid` when the link's range has them, else the first in
        it): add_external_contact is called back with State = the customer_channel
        (FACTS-next §F), and the link lists the customer (customer_acquisition/customer)."""
        corp = self.tenant(tenant)
        link, member, channel = acquisition.opened(corp, url, userid)
        fields = simulate.add_contact(corp, self.now(), {
            "userid": member, "state": channel, "external_userid": external_userid,
            "name": name, "unionid": unionid})
        link.clicks.append(int(self.now()))  # opening the link is a click
        acquisition.record(corp, link, fields)
        return {"link_id": link.link_id, **await self._added(tenant, fields, deliver)}

    def simulate_acquisition_click(self, tenant: str, url: str) -> JSON:
        """A customer opens a 获客助手 link's url and adds nobody: a click only."""
        link, _, _ = acquisition.opened(self.tenant(tenant), url, None)
        link.clicks.append(int(self.now()))
        return {"link_id": link.link_id, "clicks": len(link.clicks)}

    async def simulate_acquisition_event(self, tenant: str, change_type: str, *,
                                         link_id: str = "", userid: str = "",
                                         external_userid: str = "",
                                         deliver: bool = True) -> JSON:
        """Event=customer_acquisition with this ChangeType. Only Event and ChangeType are
        known; LinkId, UserID and ExternalUserID are the names guidebot assumes, sent when
        given. Nothing in the sandbox changes (a delete_link event does not delete)."""
        fields = {"Event": "customer_acquisition", "ChangeType": change_type,
                  **({"LinkId": link_id} if link_id else {}),
                  **({"UserID": userid} if userid else {}),
                  **({"ExternalUserID": external_userid} if external_userid else {})}
        xml, delivery = await self.emit(tenant, fields, deliver=deliver)
        return {"xml": xml, "delivery": delivery}

    async def _added(self, tenant: str, fields: JSON, deliver: bool) -> JSON:
        """Deliver a simulated add's callback; what the control route answers for it."""
        _, delivery = await self.emit(tenant, fields, deliver=deliver)
        return {"external_userid": fields["ExternalUserID"], "userid": fields["UserID"],
                "state": fields.get("State", ""), "welcome_code": fields["WelcomeCode"],
                "delivery": delivery}

    async def simulate_event(self, tenant: str, fields: Mapping[str, Any], *,
                             deliver: bool = True) -> JSON:
        simulate.apply_event(self.tenant(tenant), simulate.check_fields(fields), self.now())
        xml, delivery = await self.emit(tenant, fields, deliver=deliver)
        return {"xml": xml, "delivery": delivery}

    def seed(self, tenant_id: str, follows: object) -> JSON:
        """An existing customer base, in bulk and without callbacks (sandbox/seed.py)."""
        return seeding.seed(self.tenant(tenant_id), follows, self.now())

    async def set_directory(self, tenant_id: str, body: Mapping[str, Any], *,
                            deliver: bool = True) -> JSON:
        """Create or update departments and members (and delete members) in the address book;
        each change is called back as change_contact unless `deliver` is false."""
        tenant = self.tenant(tenant_id)
        changes = directory.apply(tenant.directory, body, is_userid)
        transfers.note_resignations(tenant, self.now())  # get_unassigned_list's dimission_time
        for member in tenant.directory.members.values():
            tenant.member(member.userid)  # other APIs (contact ways, …) know them too
        deliveries = [(await self.emit(tenant_id, fields, deliver=deliver))[1]
                      for fields in changes]
        return {"changes": [f"{f['ChangeType']}:{f.get('UserID', f.get('Id'))}"
                            for f in changes], "deliveries": deliveries}

    def set_moment_job_polls(self, tenant_id: str, polls: object) -> JSON:
        """New moment jobs answer "not done" (status 1, then 2) for this many polls."""
        if not isinstance(polls, int) or isinstance(polls, bool) or not 0 <= polls <= 100:
            raise ControlError(400, "polls must be an integer in [0, 100]")
        self.tenant(tenant_id).moment_job_polls = polls
        return {"polls": polls}

    def publish_moment(self, tenant_id: str, moment_id: str, userid: str) -> JSON:
        """A sender publishes a moment task's moment in the client (get_moment_task then
        answers publish_status 1 for them)."""
        try:
            return moments.publish(self.tenant(tenant_id).moment_jobs, moment_id, userid)
        except KeyError:
            raise ControlError(404, f"no moment {moment_id!r} for sender {userid!r}") from None

    async def client_edit_tags(self, tenant_id: str, request: Mapping[str, Any], *,
                               deliver: bool = True) -> JSON:
        """A guide edits a customer's tags in the WeCom client: the follow's tags change and
        WeCom raises edit_external_contact (unlike mark_tag through the API)."""
        tenant = self.tenant(tenant_id)
        fields = simulate.edit_tags(tenant, request)
        _, delivery = await self.emit(tenant_id, fields, deliver=deliver)
        follow = tenant.follow(fields["UserID"], fields["ExternalUserID"])
        return {"tag_ids": list(follow.tag_ids), "delivery": delivery}

    async def console_edit_tag(self, tenant: str, body: Mapping[str, Any], *,
                               deliver: bool = True) -> JSON:
        """An admin renames or reorders a tag in the console (no API): change_external_tag
        update is raised, as for any console edit of the library."""
        try:
            tag_id = tagbook.admin_edit(self.tenant(tenant), body)
        except ApiError as exc:
            raise ControlError(400, f"{exc.errcode} {exc.errmsg}") from None
        _, delivery = await self.emit(tenant, {"Event": "change_external_tag", "Id": tag_id,
                                               "TagType": "tag", "ChangeType": "update"},
                                      deliver=deliver)
        return {"id": tag_id, "delivery": delivery}

    async def console_add_tags(self, tenant: str, body: Mapping[str, Any], *,
                               deliver: bool = True) -> JSON:
        """Tags made by an admin in the console (no API), which do raise change_external_tag."""
        try:
            group, new, created = tagbook.create_tags(self.tenant(tenant), body, self.now())
        except ApiError as exc:
            raise ControlError(400, f"{exc.errcode} {exc.errmsg}") from None
        events = [("tag_group", group.group_id)] if created else []
        events += [("tag", tag.id) for tag in new]
        deliveries = [
            (await self.emit(tenant, {"Event": "change_external_tag", "Id": item_id,
                                      "TagType": kind, "ChangeType": "create"},
                             deliver=deliver))[1]
            for kind, item_id in events
        ]
        return {"tag_group": tagbook.group_json(group, new), "deliveries": deliveries}
