"""Address-book read APIs (FACTS-next §I): user/get, user/simplelist, user/list_id,
department/simplelist, department/get."""

from __future__ import annotations

from guidebot.sandbox import errors, params
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.directory import Department, Directory
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON

LIST_ID_MAX = 10000  # FACTS-next §I: user/list_id limit ≤ 10000


def _department(directory: Directory, raw: str, key: str) -> Department:
    if not raw.isdigit() or int(raw) not in directory.departments:
        raise ApiError(errors.DEPARTMENT_NOT_FOUND, f"invalid {key} {raw!r}")
    return directory.departments[int(raw)]


def user_get(call: ApiCall) -> JSON:
    """A seeded member as WeCom answers a self-built app since 2022-06-20: no avatar, gender,
    mobile or email (FACTS-next §I). Like every other sandbox API, any well-formed userid is
    a member (a guide in a callback is one in WeCom): one that was not seeded has an empty
    name and no department; a removed one answers 60111."""
    userid = params.text(call.query, "userid", required=True)
    directory = call.tenant.directory
    member = directory.members.get(userid)
    if member is not None:
        return ok(userid=member.userid, name=member.name, department=list(member.department),
                  main_department=member.main_department, position="", status=member.status)
    if userid in directory.removed:
        raise ApiError(errors.USER_NOT_FOUND, f"userid not found: {userid}")
    return ok(userid=call.tenant.member(userid), name="", department=[], position="", status=1)


def user_simplelist(call: ApiCall) -> JSON:
    directory = call.tenant.directory
    top = _department(directory, params.text(call.query, "department_id", required=True),
                      "department_id")
    fetch_child = params.integer(call.query, "fetch_child", 0, low=0, high=1)
    wanted = set(directory.below(top.id)) if fetch_child else {top.id}
    users = [{"userid": m.userid, "name": m.name, "department": list(m.department)}
             for m in directory.members.values() if wanted & set(m.department)]
    return ok(userlist=users)


def user_list_id(call: ApiCall) -> JSON:
    """One entry per member and department, paged by an opaque cursor."""
    limit = params.integer(call.body, "limit", LIST_ID_MAX, low=1, high=LIST_ID_MAX)
    pairs = [{"userid": m.userid, "department": d}
             for m in call.tenant.directory.members.values() for d in m.department]
    chunk, next_cursor = params.page(pairs, params.cursor(call.body), limit)
    return ok(next_cursor=next_cursor, dept_user=chunk)


def department_simplelist(call: ApiCall) -> JSON:
    """All departments, or the one given and those under it."""
    directory = call.tenant.directory
    raw = params.text(call.query, "id")
    ids = directory.below(_department(directory, raw, "id").id) if raw \
        else sorted(directory.departments)
    found = [directory.departments[i] for i in ids]
    return ok(department_id=[{"id": d.id, "parentid": d.parentid, "order": d.order}
                             for d in found])


def department_get(call: ApiCall) -> JSON:
    department = _department(call.tenant.directory,
                             params.text(call.query, "id", required=True), "id")
    return ok(department={"id": department.id, "name": department.name, "name_en": "",
                          "department_leader": list(department.department_leader),
                          "parentid": department.parentid,
                          "order": department.order})


ROUTES: dict[str, Handler] = {
    "user/get": user_get,
    "user/simplelist": user_simplelist,
    "user/list_id": user_list_id,
    "department/simplelist": department_simplelist,
    "department/get": department_get,
}
