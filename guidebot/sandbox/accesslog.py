"""The sandbox's access log, with the secrets WeCom's query strings carry masked.

gettoken takes `corpsecret` and every other API `access_token` in the query string: aiohttp's
default access log prints the whole request line, so it would write both to the log.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from guidebot.sandbox.calllog import MASK, SECRET_PARAMS


def masked_target(request: web.BaseRequest) -> str:
    """The request's path and query with every secret parameter's value replaced by MASK."""
    url = request.rel_url
    if not url.query_string:
        return url.path
    query = url.query
    pairs = [(k, MASK if k in SECRET_PARAMS else v) for k, v in query.items()]
    return str(url.with_query(pairs))


class MaskedAccessLogger(AbstractAccessLogger):
    """One line per request: client, method, path with masked query, status, size, time."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %s %s %.3fs', request.remote, request.method,
                         masked_target(request), response.status, response.body_length, time)
