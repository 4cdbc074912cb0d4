"""The one exception tree of guidebot."""

from __future__ import annotations


class GuidebotError(Exception):
    """Base of every error guidebot raises on purpose."""


class ConfigError(GuidebotError):
    """A configuration problem, naming the file, the key and what is wrong."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        super().__init__(f"{file}: {key}: {problem}")


class CallbackRejected(GuidebotError):
    """A callback request that must be answered 4xx and not stored."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status} {reason}")


class UnknownTenant(GuidebotError):
    """A request named a tenant this deployment does not serve."""


class Refusal(GuidebotError):
    """A request refused because of what it asked. str() is the English detail that the API
    and the CLI answer with; `code` and `params`, when given, let a page say it in its reader's
    language (the console's wording `refusal.<code>`, formatted with `params`). A subclass
    may set `api_code`: the code the admin API keeps answering (clients match it), with
    `code` then given beside it as `detail`."""

    api_code = ""

    def __init__(self, message: str = "", *, code: str = "", **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class NotFound(Refusal):
    """A requested record does not exist."""


class ValidationFailed(Refusal):
    """Input that does not satisfy its schema."""


class StateConflict(ValidationFailed):
    """A request the record's present state refuses (409), e.g. cancelling a drop that fired."""


class Conflict(GuidebotError):
    """An idempotency key already used with another request: `stored` is what it made."""

    def __init__(self, key: str, stored: dict[str, object]) -> None:
        self.stored = stored
        super().__init__(f"key: {key!r} was already used with a different body")


class WeComError(GuidebotError):
    """Base of errors talking to WeCom; `errcode` is WeCom's code, None for transport errors."""

    retryable = False

    def __init__(self, errcode: int | None, errmsg: str, *, path: str = "") -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.path = path
        super().__init__(f"{path}: errcode={errcode} {errmsg}")


class WeComTransportError(WeComError):
    """No usable HTTP answer (connection, timeout, 5xx)."""

    retryable = True


class WeComTokenError(WeComError):
    """The access token stayed invalid after one refresh (40014/42001)."""


class WeComRateLimited(WeComError):
    """45009 / 45033 / -1 after the bounded backoff ran out."""

    retryable = True


class WeComCredentialError(WeComError):
    """40001 and friends: the corp id or secret is wrong; retrying will not help."""


class WeComApiError(WeComError):
    """Any other non-zero errcode."""


class WelcomeWindowClosed(WeComApiError):
    """41051: the welcome code was used already or the 20 s window passed."""


class NoRelation(WeComApiError):
    """84061: the guide and the customer have no follow relation (any more)."""


class TagNameTaken(WeComApiError):
    """40071: a tag or tag group of that name exists already."""


class TagNotOurs(WeComApiError):
    """301002 (assumed): the tag or group was not created by this app, so it cannot edit or
    delete it."""
