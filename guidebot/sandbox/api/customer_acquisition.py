"""获客助手 link APIs (FACTS-next §F): customer_acquisition/create_link, update_link,
delete_link, get, list_link and customer; statistic and customer_acquisition_quota (their
shapes as the public SDKs read them)."""

from __future__ import annotations

import logging

from guidebot.sandbox import acquisition, errors, ids, params
from guidebot.sandbox.acquisition import AcquisitionLink
from guidebot.sandbox.api.base import ApiCall, Handler, ok
from guidebot.sandbox.errors import ApiError
from guidebot.sandbox.models import JSON

log = logging.getLogger(__name__)

PATH = "externalcontact/customer_acquisition"
LIST_MAX = 100  # list_link limit ≤ 100 (the brief's; not in FACTS, assumed), also the default
CUSTOMERS_MAX = 1000  # FACTS-next §F: customer limit ≤ 1000; the default too (assumed)


def create_link(call: ApiCall) -> JSON:
    """A new link (FACTS-next §F). The count limit is checked once the request is valid, as
    for group welcome templates (assumed)."""
    link_id = ids.link_id()
    link = AcquisitionLink(link_id, "", acquisition.URL_BASE + link_id, int(call.now), [], [])
    acquisition.apply_fields(call.tenant, link, call.body)
    links = call.tenant.acquisition_links
    if len(links) >= acquisition.LINKS_MAX:
        raise ApiError(errors.ACQUISITION_LINKS_FULL)
    links[link_id] = link
    log.info("tenant %s: acquisition link %s created", call.tenant.id, link_id)
    return ok(link={"link_id": link_id, "link_name": link.link_name, "url": link.url,
                    "create_time": link.create_time})


def _link(call: ApiCall) -> AcquisitionLink:
    return acquisition.find(call.tenant, params.text(call.body, "link_id", required=True))


def update_link(call: ApiCall) -> JSON:
    """A link's name, members or flags changed; its url stays. FACTS-next §F names the API
    and its link_id only: the sandbox takes create_link's fields, checked as create_link checks
    them (a member who left answers 40058, a malformed userid 40003), keeps those not given,
    and a given range replaces the whole range (assumed). Nothing changes when a field is
    refused; later adds through the url go to the new range (acquisition.opened)."""
    link = _link(call)
    acquisition.apply_fields(call.tenant, link, call.body)
    log.info("tenant %s: acquisition link %s updated (%s)", call.tenant.id, link.link_id,
             ", ".join(sorted(k for k in call.body if k != "link_id")) or "nothing")
    return ok()


def delete_link(call: ApiCall) -> JSON:
    """The link and the record of who came through it are gone (assumed)."""
    link = _link(call)
    del call.tenant.acquisition_links[link.link_id]
    log.info("tenant %s: acquisition link %s deleted", call.tenant.id, link.link_id)
    return ok()


def get(call: ApiCall) -> JSON:
    return ok(**acquisition.link_json(_link(call)))


def list_link(call: ApiCall) -> JSON:
    limit = params.integer(call.body, "limit", LIST_MAX, low=1, high=LIST_MAX)
    chunk, next_cursor = params.page(list(call.tenant.acquisition_links),
                                     params.cursor(call.body), limit)
    return ok(link_id_list=chunk, next_cursor=next_cursor)


def customer(call: ApiCall) -> JSON:
    """The customers who added a member through the link, first arrival first, each with the
    customer_channel they came by as `state` (FACTS-next §F)."""
    link = _link(call)
    limit = params.integer(call.body, "limit", CUSTOMERS_MAX, low=1, high=CUSTOMERS_MAX)
    chunk, next_cursor = params.page(list(link.customers.values()), params.cursor(call.body),
                                     limit)
    return ok(customer_list=[acquisition.arrival_json(a) for a in chunk],
              next_cursor=next_cursor)


def statistic(call: ApiCall) -> JSON:
    """A link's clicks and new customers between start_time and end_time (Unix s, both
    counted); end before start, or a range longer than STATISTIC_MAX_S, answers 40058
    (assumed: WeCom's longest range is not in FACTS)."""
    link = _link(call)
    start = params.integer(call.body, "start_time", -1, low=0, high=2**31)
    end = params.integer(call.body, "end_time", -1, low=0, high=2**31)
    if end < start:
        raise ApiError(errors.INVALID_PARAM, "invalid end_time: before start_time")
    if end - start > acquisition.STATISTIC_MAX_S:
        raise ApiError(errors.INVALID_PARAM, "invalid time range: too long")
    return ok(**acquisition.statistic(link, start, end))


def quota(call: ApiCall) -> JSON:
    """The corp's paid quota: creating links does not draw on it (assumed); the control route
    /_sandbox/{t}/acquisition/quota sets it."""
    return ok(**call.tenant.acquisition_quota.answer(call.now))


ROUTES: dict[str, Handler] = {
    "externalcontact/customer_acquisition_quota": quota,
    f"{PATH}/statistic": statistic,
    f"{PATH}/create_link": create_link,
    f"{PATH}/update_link": update_link,
    f"{PATH}/delete_link": delete_link,
    f"{PATH}/get": get,
    f"{PATH}/list_link": list_link,
    f"{PATH}/customer": customer,
}
