"""客户群 state: customer groups, their members and the change_external_chat fields each change
in the client calls back with (FACTS-next §C)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from guidebot.sandbox import errors, ids
from guidebot.sandbox.errors import ApiError, ControlError
from guidebot.sandbox.models import JSON

if TYPE_CHECKING:  # the tenant holds a GroupBook
    from guidebot.sandbox.tenant import TenantState

log = logging.getLogger(__name__)

EVENT = "change_external_chat"
# groupchat/list item status (FACTS-next §C): 0 正常, 1 跟进人离职, 2 离职继承中, 3 离职继承完成.
# 2 and 3 follow a group's 离职继承 through groupchat/transfer (group_transfers.py).
NORMAL, OWNER_RESIGNED, INHERITING, INHERITED = 0, 1, 2, 3
STATUS_FILTERS = range(4)  # 0 all, 1 离职待继承, 2 离职继承中, 3 离职继承完成 (FACTS-next §C)
MEMBER, EXTERNAL = 1, 2  # member_list type: 1 企业成员, 2 外部联系人 (FACTS-next §C)
# The event's JoinScene (0 由成员邀请入群, directly or by an invite link; 3 扫描群二维码) and
# groupchat/get's join_scene for it (1 直接邀请, 2 邀请链接, 3 扫群二维码), FACTS-next §C. The
# sandbox's 0 joins are direct invitations: not in FACTS (assumed), so 2 never occurs.
JOIN_SCENES = {0: 1, 3: 3}
JOIN_DIRECT = 1
QUIT_SCENES = frozenset({0, 1})  # QuitScene: 0 自己退群, 1 群主/群管理员移出 (FACTS-next §C)
# Ids a group member is taken as an external contact by when no customer has them: WeCom's
# external_userids start so ("wm" for WeChat users, "wo" for others). Not in FACTS (assumed);
# a member userid that happens to start so is read as external.
EXTERNAL_PREFIXES = ("wm", "wo")
# No cap on a group's members: WeCom's 500 per customer group is not in FACTS, so the sandbox
# does not enforce one.


@dataclass(slots=True)
class GroupMember:
    id: str  # a member's userid (type 1) or an external_userid (type 2)
    type: int
    join_time: int
    join_scene: int  # groupchat/get's code
    invitor: str = ""  # a member's userid, "" when no member invited them
    name: str = ""  # for an external contact the sandbox has no customer for (a demo name)
    state: str = ""  # the 加入群聊 way's state they joined through (join_ways.py), else ""


@dataclass
class Group:
    chat_id: str
    owner: str
    name: str
    notice: str
    create_time: int
    members: dict[str, GroupMember] = field(default_factory=dict)  # by id, in joining order
    member_version: str = ""
    membership_changes: int = 0
    dismissed: bool = False
    # 离职继承 (group_transfers.py): NORMAL, INHERITING until inherit_due, then INHERITED
    inheritance: int = NORMAL
    heir: str = ""  # the new owner of the latest 离职继承
    inherit_due: int = 0  # when the heir takes over (sandbox time, s)
    onjob_transfers: list[int] = field(default_factory=list)  # times of on-job transfers


@dataclass
class GroupBook:
    chats: dict[str, Group] = field(default_factory=dict)  # by chat_id, in creation order
    # original owner → times of the transfers of their groups (the 300-a-day rule); not shown
    # in the state view (the groups' own fields are)
    handed_over: dict[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> list[JSON]:
        return [asdict(group) for group in self.chats.values()]


def _text(value: object, key: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ControlError(400, f"{key} must be a {'non-empty ' if required else ''}string")
    return value


def _ids(value: object, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ControlError(400, f"{key} must be a list of ids")
    if len(set(value)) != len(value):
        raise ControlError(400, f"{key} lists an id twice")
    return value


def _scene(value: object, allowed: Iterable[int], key: str) -> int:
    codes = sorted(allowed)
    if not isinstance(value, int) or isinstance(value, bool) or value not in codes:
        raise ControlError(400, f"{key} must be one of {codes}")
    return value


def _userid(tenant: TenantState, value: object, key: str) -> str:
    try:
        return tenant.member(value)
    except ApiError:
        raise ControlError(400, f"{key}: {value!r} is not a well-formed userid") from None


def _version(group: Group) -> str:
    """An opaque member_version that changes on every membership change (FACTS-next §C):
    the md5 of the chat, how many changes it has seen and its members (the sandbox's way)."""
    group.membership_changes += 1
    text = f"{group.chat_id}|{group.membership_changes}|{','.join(sorted(group.members))}"
    group.member_version = hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
    return group.member_version


def enter(group: Group, userid: str, now: float) -> None:
    """A member joins with no callback (a new owner taking the group over): a direct join with
    no invitor, and a new member_version like every membership change. Not in FACTS
    (assumed)."""
    group.members[userid] = GroupMember(userid, MEMBER, int(now), JOIN_DIRECT)
    _version(group)


def _new_member(tenant: TenantState, member_id: str, now: float, join_scene: int,
                invitor: str, state: str = "") -> GroupMember:
    """Type 2 for a known customer's external_userid or an id shaped like one, else a member."""
    if member_id in tenant.customers or member_id.startswith(EXTERNAL_PREFIXES):
        name = "" if member_id in tenant.customers else ids.demo_name()
        return GroupMember(member_id, EXTERNAL, int(now), join_scene, invitor, name, state)
    userid = _userid(tenant, member_id, "members")
    return GroupMember(userid, MEMBER, int(now), join_scene, invitor, state=state)


def find(tenant: TenantState, chat_id: object) -> Group:
    """A group the control routes may change: 404 when unknown, 400 once dismissed."""
    group = tenant.groups.chats.get(_text(chat_id, "chat_id", required=True))
    if group is None:
        raise ControlError(404, f"no group {chat_id}")
    if group.dismissed:
        raise ControlError(400, f"group {chat_id} is dismissed and cannot change")
    return group


def create(tenant: TenantState, now: float, owner: object, *, name: object = None,
           notice: object = None, members: object = None, chat_id: object = None) -> JSON:
    """A member creates a customer group in the client; returns the create callback fields."""
    owner_id = _userid(tenant, owner, "owner")
    # A member who has left cannot create a group: not in FACTS (assumed).
    if tenant.directory.is_resigned(owner_id):
        raise ControlError(400, f"owner {owner_id} has left the corp")
    wanted = _ids([] if members is None else members, "members")
    if owner_id in wanted:
        raise ControlError(400, "members must not list the owner (a member already)")
    chat_id = _text(chat_id, "chat_id") or ids.chat_id()
    if chat_id in tenant.groups.chats:
        raise ControlError(400, f"group {chat_id} exists")
    group = Group(chat_id, owner_id, _text(name, "name"), _text(notice, "notice"), int(now))
    # The owner joins directly with no invitor, and invites everyone listed: not in FACTS
    # (assumed).
    joined = [GroupMember(owner_id, MEMBER, int(now), JOIN_DIRECT)]
    joined += [_new_member(tenant, m, now, JOIN_DIRECT, owner_id) for m in wanted]
    group.members = {m.id: m for m in joined}
    _version(group)
    tenant.groups.chats[chat_id] = group
    log.info("tenant %s: %s created a customer group of %d", tenant.id, owner_id, len(joined))
    return {"Event": EVENT, "ChatId": chat_id, "ChangeType": "create"}


def _membership(group: Group, detail: str, scene: JSON, changed: list[str],
                last_version: str) -> JSON:
    """update/add_member or update/del_member, ordered like WeCom's sample (FACTS-next §C).
    The sample carries both JoinScene and QuitScene; the sandbox sends the one that applies
    (assumed)."""
    return {"Event": EVENT, "ChatId": group.chat_id, "ChangeType": "update",
            "UpdateDetail": detail, **scene, "MemChangeCnt": len(changed),
            "MemChangeList": {"Item": changed}, "LastMemVer": last_version,
            "CurMemVer": _version(group)}


def join(tenant: TenantState, now: float, chat_id: object, members: object,
         join_scene: object, invitor: object = None, *, state: str = "") -> JSON:
    """Members or customers join (through a 加入群聊 way: its `state`, join_ways.py); returns
    the update/add_member fields."""
    group = find(tenant, chat_id)
    wanted = _ids(members, "members")
    if not wanted:
        raise ControlError(400, "members must list at least one id")
    already = [m for m in wanted if m in group.members]
    if already:
        raise ControlError(400, f"already in the group: {', '.join(already)}")
    scene = _scene(join_scene, JOIN_SCENES, "join_scene")
    # The invitor of a direct join is the owner unless given (a member of the group); a QR
    # join has none unless given. Not in FACTS (assumed).
    inviting = _text(invitor, "invitor") or (group.owner if scene == 0 else "")
    in_group = group.members.get(inviting)
    if inviting and (in_group is None or in_group.type != MEMBER):
        raise ControlError(400, f"invitor {inviting} is not a member of the group")
    last_version = group.member_version
    for member_id in wanted:
        group.members[member_id] = _new_member(tenant, member_id, now, JOIN_SCENES[scene],
                                               inviting, state)
    return _membership(group, "add_member", {"JoinScene": scene}, wanted, last_version)


def quit_group(tenant: TenantState, chat_id: object, members: object,
               quit_scene: object) -> JSON:
    """Members or customers leave (or are removed); returns the update/del_member fields."""
    group = find(tenant, chat_id)
    wanted = _ids(members, "members")
    if not wanted:
        raise ControlError(400, "members must list at least one id")
    missing = [m for m in wanted if m not in group.members]
    if missing:
        raise ControlError(400, f"not in the group: {', '.join(missing)}")
    # The owner hands the group over before leaving: not in FACTS (assumed).
    if group.owner in wanted:
        raise ControlError(400, "the owner cannot quit; change the owner first")
    scene = _scene(quit_scene, QUIT_SCENES, "quit_scene")
    last_version = group.member_version
    for member_id in wanted:
        del group.members[member_id]
    return _membership(group, "del_member", {"QuitScene": scene}, wanted, last_version)


def change(tenant: TenantState, chat_id: object, *, name: object = None,
           notice: object = None, owner: object = None) -> JSON:
    """Exactly one of a new name, notice or owner (a member of the group); returns the
    update/change_name, change_notice or change_owner fields (no member fields)."""
    group = find(tenant, chat_id)
    given = {k: v for k, v in {"name": name, "notice": notice, "owner": owner}.items()
             if v is not None}
    if len(given) != 1:
        raise ControlError(400, "give exactly one of name, notice and owner")
    [(key, value)] = given.items()
    if key == "owner":
        new_owner = group.members.get(_text(value, "owner", required=True))
        if new_owner is None or new_owner.type != MEMBER:
            raise ControlError(400, f"owner {value} is not a member of the group")
        # The heir of a 离职继承 in progress takes over alone: not in FACTS (assumed).
        if group.inheritance == INHERITING:
            raise ControlError(400, f"group {chat_id} is being inherited")
        group.owner = new_owner.id
    elif key == "name":
        group.name = _text(value, "name")
    else:
        group.notice = _text(value, "notice")
    return updated(group, f"change_{key}")


def updated(group: Group, detail: str) -> JSON:
    """update/change_name, change_notice or change_owner: no member fields."""
    return {"Event": EVENT, "ChatId": group.chat_id, "ChangeType": "update",
            "UpdateDetail": detail}


def dismiss(tenant: TenantState, chat_id: object) -> JSON:
    """The owner dismisses the group; it stays in the sandbox's state, marked dismissed."""
    group = find(tenant, chat_id)
    group.dismissed = True
    return {"Event": EVENT, "ChatId": group.chat_id, "ChangeType": "dismiss"}


def listed(tenant: TenantState, owners: list[str], status_filter: int) -> list[JSON]:
    """groupchat/list's items, in creation order. Dismissed groups are not listed: not in
    FACTS (assumed)."""
    wanted = set(owners)
    items = []
    for group in tenant.groups.chats.values():
        if group.dismissed or (wanted and group.owner not in wanted):
            continue
        status = list_status(tenant, group)
        if status_filter in (0, status):
            items.append({"chat_id": group.chat_id, "status": status})
    return items


def list_status(tenant: TenantState, group: Group) -> int:
    """2 while a 离职继承 waits; 1 while the owner has left (directory status 5 or deleted)
    and none started; 3 once the heir owns the group, until someone else does (assumed: WeCom
    does not say how long 3 lasts); else 0."""
    if group.inheritance == INHERITING:
        return INHERITING
    if tenant.directory.is_resigned(group.owner):
        return OWNER_RESIGNED
    if group.inheritance == INHERITED and group.owner == group.heir:
        return INHERITED
    return NORMAL


def view(tenant: TenantState, chat_id: str, *, need_name: bool) -> JSON:
    """groupchat/get's group_chat, or the sandbox's error for an unknown or dismissed chat."""
    group = tenant.groups.chats.get(chat_id)
    if group is None or group.dismissed:
        raise ApiError(errors.INVALID_CHAT_ID, f"chatid not found: {chat_id}")
    return {"chat_id": group.chat_id, "name": group.name, "owner": group.owner,
            "create_time": group.create_time, "notice": group.notice,
            "member_list": [_member_json(tenant, m, need_name)
                            for m in group.members.values()],
            # Group admins are not emulated: not in FACTS (assumed) that a group has any.
            "admin_list": [], "member_version": group.member_version}


def _member_json(tenant: TenantState, member: GroupMember, need_name: bool) -> JSON:
    """One member_list item (FACTS-next §C). `state` only for a join through a 加入群聊 way
    that has one (join_ways.py; the field is assumed, not in FACTS); no group_nickname set:
    it answers ""."""
    customer = tenant.customers.get(member.id) if member.type == EXTERNAL else None
    item: JSON = {"userid": member.id, "type": member.type}
    if member.type == EXTERNAL:
        item["unionid"] = customer.unionid if customer else ""
    item |= {"join_time": member.join_time, "join_scene": member.join_scene}
    if member.invitor:
        item["invitor"] = {"userid": member.invitor}
    if member.state:
        item["state"] = member.state
    item["group_nickname"] = ""
    if need_name:
        item["name"] = customer.name if customer else _name(tenant, member)
    return item


def _name(tenant: TenantState, member: GroupMember) -> str:
    """An external contact's demo name; a member's directory name, else their userid
    (assumed)."""
    if member.type == EXTERNAL:
        return member.name
    found = tenant.directory.members.get(member.id)
    return found.name if found else member.id
