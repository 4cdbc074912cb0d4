"""The simulated address book: departments and members, seeded through the control route,
each creation or update producing the change_contact fields WeCom would call back with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from guidebot.sandbox.errors import ControlError
from guidebot.sandbox.models import JSON

STATUSES = frozenset({1, 2, 4, 5})  # FACTS-next §I: 1 已激活, 2 已禁用, 4 未激活, 5 退出企业
ACTIVE, RESIGNED = 1, 5
NAME_MAX = 64  # [mem] WeCom's limit for member and department names; the sandbox's choice
BODY_KEYS = frozenset({"departments", "members", "delete_members", "deliver"})
DEPARTMENT_KEYS = frozenset({"id", "name", "parentid", "order", "department_leader"})
MEMBER_KEYS = frozenset({"userid", "name", "department", "main_department", "status"})
EVENT = "change_contact"


@dataclass
class Department:
    id: int
    name: str
    parentid: int
    order: int = 0
    # the department's leaders (负责人), as department/get answers them (FACTS-next §I)
    department_leader: list[str] = field(default_factory=list)


@dataclass
class Member:
    userid: str
    name: str
    department: list[int]
    main_department: int
    status: int = 1


@dataclass
class Directory:
    departments: dict[int, Department] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)  # deleted members: user/get answers 60111

    def below(self, department_id: int) -> list[int]:
        """The department and every department under it, by id."""
        found, todo = [], [department_id]
        while todo:
            current = todo.pop()
            found.append(current)
            todo.extend(d.id for d in self.departments.values() if d.parentid == current)
        return sorted(found)

    def is_resigned(self, userid: str) -> bool:
        """Left the corp (客户继承, FACTS-next §D): status 5 (退出企业), or deleted here."""
        member = self.members.get(userid)
        return userid in self.removed if member is None else member.status == RESIGNED

    def is_active(self, userid: str) -> bool:
        """Status 1; a member never seeded counts as active (any userid is a member)."""
        member = self.members.get(userid)
        return userid not in self.removed if member is None else member.status == ACTIVE

    def to_json(self) -> JSON:
        return {"departments": [asdict(d) for d in sorted(self.departments.values(),
                                                           key=lambda d: d.id)],
                "members": [asdict(m) for m in self.members.values()],
                "removed": sorted(self.removed)}


def _int(value: Any, where: str, low: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ControlError(400, f"{where} must be an integer ≥ {low}")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= NAME_MAX:
        raise ControlError(400, f"{where} must be 1-{NAME_MAX} characters")
    return value


def _keys(item: Any, allowed: frozenset[str], where: str) -> Mapping[str, Any]:
    if not isinstance(item, dict):
        raise ControlError(400, f"{where} must be an object")
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise ControlError(400, f"{where}: unknown key(s) {', '.join(unknown)}")
    return item


def _list(body: Mapping[str, Any], key: str) -> list[Any]:
    value = body.get(key, [])
    if not isinstance(value, list):
        raise ControlError(400, f"{key} must be a list")
    return value


def _department(index: int, item: Any, is_userid: Any) -> Department:
    where = f"departments[{index}]"
    data = _keys(item, DEPARTMENT_KEYS, where)
    leaders = data.get("department_leader", [])
    if not isinstance(leaders, list) or not all(is_userid(u) for u in leaders):
        raise ControlError(400, f"{where}.department_leader must be a list of userids")
    return Department(_int(data.get("id"), f"{where}.id"), _name(data.get("name"),
                      f"{where}.name"), _int(data.get("parentid", 0), f"{where}.parentid", 0),
                      _int(data.get("order", 0), f"{where}.order", 0), list(leaders))


def _member(index: int, item: Any, known: set[int], is_userid: Any) -> Member:
    where = f"members[{index}]"
    data = _keys(item, MEMBER_KEYS, where)
    userid = data.get("userid")
    if not is_userid(userid):
        raise ControlError(400, f"{where}.userid must be a well-formed userid")
    departments = data.get("department", [])
    if not isinstance(departments, list) or not departments:
        raise ControlError(400, f"{where}.department must be a non-empty list")
    for department in departments:
        if _int(department, f"{where}.department[]") not in known:
            raise ControlError(400, f"{where}: no department {department}")
    main = _int(data.get("main_department", departments[0]), f"{where}.main_department")
    status = data.get("status", 1)
    if main not in departments or status not in STATUSES:
        raise ControlError(400, f"{where}: main_department must be one of department, "
                                f"status one of {sorted(STATUSES)}")
    return Member(str(userid), _name(data.get("name"), f"{where}.name"), list(departments), main,
                  status)


def apply(directory: Directory, body: Mapping[str, Any], is_userid: Any) -> list[JSON]:
    """Check the whole request, then apply it; returns the change_contact fields, in order."""
    _keys(body, BODY_KEYS, "body")
    departments = [_department(i, d, is_userid)
                   for i, d in enumerate(_list(body, "departments"))]
    known = set(directory.departments) | {d.id for d in departments}
    members = [_member(i, m, known, is_userid) for i, m in enumerate(_list(body, "members"))]
    deleted = _list(body, "delete_members")
    for userid in deleted:
        if userid not in directory.members:
            raise ControlError(400, f"delete_members: no member {userid!r}")
    events = []
    for department in departments:
        change = "update_party" if department.id in directory.departments else "create_party"
        directory.departments[department.id] = department
        events.append({"Event": EVENT, "ChangeType": change, "Id": department.id,
                       "Name": department.name, "ParentId": department.parentid})
    for member in members:
        change = "update_user" if member.userid in directory.members else "create_user"
        directory.members[member.userid] = member
        directory.removed.discard(member.userid)
        events.append({"Event": EVENT, "ChangeType": change, "UserID": member.userid,
                       "Name": member.name,
                       "Department": ",".join(map(str, member.department)),
                       "MainDepartment": member.main_department, "Status": member.status})
    for userid in deleted:
        del directory.members[userid]
        directory.removed.add(userid)
        events.append({"Event": EVENT, "ChangeType": "delete_user", "UserID": userid})
    return events
