"""Injected failures: the next N calls to a path answer a chosen errcode, or answer only after
a delay (a slow WeCom), or both; or answer a bare HTTP 5xx (WeCom's gateway failing: no API
answer at all, what guidebot counts as WeCom unreachable)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from guidebot.sandbox.errors import ApiError, ControlError

FOREVER = -1
MAX_DELAY_S = 60


@dataclass
class Fault:
    tenant: str | None  # None: any tenant (and calls whose tenant is unknown)
    path: str
    errcode: int  # 0: answered normally (after delay_s), or http_status
    times: int
    delay_s: float = 0.0
    http_status: int = 0  # 5xx: answered with this status and no API body


def normalize_path(path: str) -> str:
    path = path.strip().lstrip("/")
    return path.removeprefix("cgi-bin/")


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, tenant: str | None, path: object, errcode: object, times: object,
            delay_s: object = 0, http_status: object = 0) -> Fault:
        if not isinstance(path, str) or not normalize_path(path):
            raise ControlError(400, "path must be a non-empty string")
        if (not isinstance(delay_s, int | float) or isinstance(delay_s, bool)
                or not 0 <= delay_s <= MAX_DELAY_S):
            raise ControlError(400, f"delay_s must be a number from 0 to {MAX_DELAY_S}")
        if (not isinstance(http_status, int) or isinstance(http_status, bool)
                or not (http_status == 0 or 500 <= http_status <= 599)):
            raise ControlError(400, "http_status must be 0 or from 500 to 599")
        if http_status and errcode != 0:
            raise ControlError(400, "a fault answers an errcode or an http_status, not both")
        if (not isinstance(errcode, int) or isinstance(errcode, bool)
                or (errcode == 0 and not delay_s and not http_status)):
            raise ControlError(400, "errcode must be a non-zero integer (0 only with delay_s "
                                    "or http_status)")
        if not isinstance(times, int) or isinstance(times, bool) or (times < 1 and times != -1):
            raise ControlError(400, "times must be a positive integer or -1 (forever)")
        fault = Fault(tenant, normalize_path(path), errcode, times, float(delay_s), http_status)
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        return [asdict(f) for f in self._faults]

    def delay(self, tenant: str | None, path: str) -> float:
        """Seconds to wait before answering: the first matching fault's delay (a slow-only
        fault, errcode 0, is used up here; one with an errcode when it trips)."""
        fault = self._first(tenant, path)
        if fault is None:
            return 0.0
        if fault.errcode == 0 and not fault.http_status:
            self._use(fault)
        return fault.delay_s

    def gateway(self, tenant: str | None, path: str) -> int:
        """The HTTP status to answer instead of the API (0: none), using up one of the first
        matching gateway fault's times."""
        fault = next((f for f in self._faults if f.path == path and f.tenant in (None, tenant)
                      and f.http_status), None)
        if fault is None:
            return 0
        self._use(fault)
        return fault.http_status

    def trip(self, tenant: str | None, path: str) -> None:
        """Raise the first matching fault's errcode, using up one of its times."""
        fault = self._first(tenant, path, failing=True)
        if fault is not None:
            self._use(fault)
            raise ApiError(fault.errcode, "sandbox injected fault")

    def _first(self, tenant: str | None, path: str, *, failing: bool = False) -> Fault | None:
        return next((f for f in self._faults if f.path == path and f.tenant in (None, tenant)
                     and (f.errcode != 0 or not failing)), None)

    def _use(self, fault: Fault) -> None:
        if fault.times != FOREVER:
            fault.times -= 1
            if fault.times == 0:
                self._faults.remove(fault)
