"""客户继承 APIs (FACTS-next §D): on-job and resigned transfer_customer and transfer_result,
and get_unassigned_list. Waiting transfers are settled before each of these is answered
(cgi.py, Sandbox.settle_transfers), so the answers see the sandbox clock."""

from __future__ import annotations

from guidebot.sandbox import errors, params, transfers
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON

CUSTOMERS_MAX = 100  # FACTS-next §D: external_userid ≤ 100 per call
SUCCESS_MSG_MAX = 200  # FACTS-next §D: transfer_success_msg ≤ 200 characters
RESULT_PAGE = 1000  # FACTS-next §D: transfer_result answers ≤ 1000 per page
UNASSIGNED_PAGE = 1000  # FACTS-next §D: page_size ≤ 1000, default 1000


def _pair(call: ApiCall) -> tuple[str, str]:
    handover = call.tenant.member(params.text(call.body, "handover_userid", required=True))
    takeover = call.tenant.member(params.text(call.body, "takeover_userid", required=True))
    return handover, takeover


def _transfer(call: ApiCall, *, resigned: bool) -> JSON:
    handover, takeover = _pair(call)
    wanted = params.str_list(call.body, "external_userid", max_items=CUSTOMERS_MAX)
    if not wanted:
        raise ApiError(errors.INVALID_PARAM, "external_userid is required")
    transfers.check_takeover(call.tenant, handover, takeover)
    if resigned and not call.tenant.directory.is_resigned(handover):
        raise ApiError(errors.HANDOVER_NOT_RESIGNED)
    # An on-job transfer from a member who has resigned is not refused: not in FACTS (assumed).
    customer = [{"external_userid": e,
                 "errcode": transfers.start(call.tenant, handover, takeover, e,
                                            resigned=resigned, now=call.now)}
                for e in wanted]
    return ok(customer=customer)


def transfer_customer(call: ApiCall) -> JSON:
    """在职继承. transfer_success_msg is checked but not shown to anyone (no client here)."""
    params.text(call.body, "transfer_success_msg", max_chars=SUCCESS_MSG_MAX)
    return _transfer(call, resigned=False)


def resigned_transfer_customer(call: ApiCall) -> JSON:
    return _transfer(call, resigned=True)


def _result(call: ApiCall, *, resigned: bool) -> JSON:
    handover, takeover = _pair(call)
    found = transfers.results(call.tenant, handover, takeover, resigned=resigned)
    chunk, next_cursor = params.page(found, params.cursor(call.body), RESULT_PAGE)
    return ok(customer=chunk, next_cursor=next_cursor)


def transfer_result(call: ApiCall) -> JSON:
    return _result(call, resigned=False)


def resigned_transfer_result(call: ApiCall) -> JSON:
    return _result(call, resigned=True)


def get_unassigned_list(call: ApiCall) -> JSON:
    """Paged by cursor, or by page_id (from 0) without one, as FACTS-next §D describes."""
    size = params.integer(call.body, "page_size", UNASSIGNED_PAGE, low=1, high=UNASSIGNED_PAGE)
    page_id = params.integer(call.body, "page_id", 0, low=0, high=2**31)
    start = params.cursor(call.body) if call.body.get("cursor") else page_id * size
    chunk, next_cursor = params.page(transfers.unassigned(call.tenant), start, size)
    return ok(info=chunk, is_last=not next_cursor, next_cursor=next_cursor)


ROUTES: dict[str, Handler] = {
    "externalcontact/transfer_customer": transfer_customer,
    "externalcontact/transfer_result": transfer_result,
    "externalcontact/resigned/transfer_customer": resigned_transfer_customer,
    "externalcontact/resigned/transfer_result": resigned_transfer_result,
    "externalcontact/get_unassigned_list": get_unassigned_list,
}
