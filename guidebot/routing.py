"""Router and EventRouter: handlers per event type with filters; first match wins."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from guidebot import lanes
from guidebot.events import Event

if TYPE_CHECKING:
    from guidebot.services import Services

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
Filter = Callable[[Any], bool]
Handler = Callable[[Any, "Context"], Awaitable[None]]


@dataclass(frozen=True)
class Context:
    """What every handler receives besides its event."""

    services: Services
    inbox_id: int | None = None

    async def later(self) -> None:
        """The urgent part of this event is done; what follows may wait for a burst's urgent
        work (guidebot/lanes.py)."""
        await lanes.later()


@dataclass(frozen=True)
class Route:
    event_type: type[Event]
    filters: tuple[Filter, ...]
    handler: Handler

    def matches(self, event: Event) -> bool:
        return isinstance(event, self.event_type) and all(f(event) for f in self.filters)


class Router:
    """One per handlers/*.py file; routes are tried in the order they were declared."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.routes: list[Route] = []

    def on(self, event_type: type[E], *filters: Filter) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(Route(event_type, filters, handler))
            return handler

        return register


class EventRouter:
    """Routers composed explicitly, in priority order."""

    def __init__(self, routers: Sequence[Router]) -> None:
        self.routers = tuple(routers)

    def resolve(self, event: Event) -> Handler | None:
        for router in self.routers:
            for route in router.routes:
                if route.matches(event):
                    return route.handler
        return None

    async def dispatch(self, event: Event, ctx: Context) -> str:
        """Run the first matching handler; returns its name, or "unhandled"."""
        handler = self.resolve(event)
        if handler is None:
            log.info("no handler for %s tenant=%s", type(event).__name__, event.tenant)
            return "unhandled"
        await handler(event, ctx)
        return handler.__name__
