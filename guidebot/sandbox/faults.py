"""Injected failures: the next N calls to a path answer a chosen errcode."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from guidebot.sandbox.errors import ApiError, ControlError

FOREVER = -1


@dataclass
class Fault:
    tenant: str | None  # None: any tenant (and calls whose tenant is unknown)
    path: str
    errcode: int
    times: int


def normalize_path(path: str) -> str:
    path = path.strip().lstrip("/")
    return path.removeprefix("cgi-bin/")


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, tenant: str | None, path: object, errcode: object, times: object) -> Fault:
        if not isinstance(path, str) or not normalize_path(path):
            raise ControlError(400, "path must be a non-empty string")
        if not isinstance(errcode, int) or isinstance(errcode, bool) or errcode == 0:
            raise ControlError(400, "errcode must be a non-zero integer")
        if not isinstance(times, int) or isinstance(times, bool) or (times < 1 and times != -1):
            raise ControlError(400, "times must be a positive integer or -1 (forever)")
        fault = Fault(tenant, normalize_path(path), errcode, times)
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        return [asdict(f) for f in self._faults]

    def trip(self, tenant: str | None, path: str) -> None:
        """Raise the first matching fault's errcode, using up one of its times."""
        for fault in self._faults:
            if fault.path == path and fault.tenant in (None, tenant):
                if fault.times != FOREVER:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                raise ApiError(fault.errcode, "sandbox injected fault")
