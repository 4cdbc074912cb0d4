"""接待时效: how fast guides answer the 微信客服 conversations handed to them.

Read from what intake stores of `kf/sync_msg` (kf_messages), one conversation (account and
customer) at a time, in send_time order:

- a handoff starts with the customer message that was handed to a servicer (status handoff,
  its `guide`); its time is that message's send_time (WeCom's clock, like every reply's);
- a handoff guidebot made to the pool (state 2: status handoff, no guide) starts a turn at
  once, of nobody yet (servicer "": the pool); when a servicer takes the session
  (session_status_change change_type 1, `new_servicer_userid`) the turn becomes theirs and
  keeps its start: their first response counts from the time the customer entered the pool,
  and the turn counts in the days it entered the pool;
- a servicer's message from the WeCom client (origin 5) is a reply; the first one after the
  handoff gives the first-response time;
- the event session_status_change ends it: change_type 3 (the session ended) stops the clock;
  change_type 2 (transferred to another servicer) ends it as "transferred" and starts a new
  one for `new_servicer_userid` at the event, which takes over the customer's wait (the
  event's fields as WeCom's sync_msg doc lists them, which the sandbox follows: assumed,
  not seen from WeCom);
- the customer waits from their first message after the latest reply (the handoff's own
  message to begin with) until a reply; waiting ends with the session, and never lasts
  beyond 48 h after the customer's latest message (WeCom's session rule: after that nobody
  can answer it);
- a session guidebot never handed (WeCom queued it by its own routing) that a servicer takes
  from the pool (change_type 1) or is transferred (2): intake records the event as a handoff
  of route "wecom" (chat/intake.py), and a turn starts for them at the event (via "wecom",
  its msgid the event's: the handoff page's id). A take or transfer intake did not record
  so belongs to a turn that began before it (one that began before the messages read is
  not counted again); the customer waits from their first message
  the bot did not answer (from the take when the messages read began after it).

Another handoff of a conversation already with the same servicer (the customer asked again),
or to the pool while it waits there, continues the one that is open. A change_type other
than 1, 2 or 3 changes nothing (4 is not in the facts: intake records it and logs its id).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from guidebot.chat.entries import event_of
from guidebot.db.engine import Database
from guidebot.db.models_kf import KfMessage
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import kf as repo
from guidebot.db.types import utcnow
from guidebot.settings import Settings, TenantSettings

CUSTOMER, SERVICER = 3, 5  # sync_msg origin
SESSION_LIFE = timedelta(hours=48)  # a session can be answered 48 h after the last message
DEFAULT_MINUTES = 10  # the threshold of the figures when reminders are off (0)
POOL_TAKEN, TRANSFERRED, ENDED = 1, 2, 3  # session_status_change change_type
KNOWN_CHANGES = (POOL_TAKEN, TRANSFERRED, ENDED)  # the facts know no other (not 4)
NEW_SERVICER = (POOL_TAKEN, TRANSFERRED)  # the changes that name who has the session now
SESSION_EVENT = "session_status_change"
POOL = ""  # the servicer of a turn nobody took yet (guidebot handed it to the pool)
WECOM = "wecom"  # the route intake records a handoff of WeCom's own with
STATUSES = ("waiting", "replied", "all")
T = TypeVar("T")


@dataclass
class Stretch:
    """A customer waiting for a reply: since their first unanswered message (its msgid)."""

    msgid: str
    since: datetime


@dataclass
class Handed:
    """One servicer's turn with a conversation: from a handoff or a transfer to them."""

    open_kfid: str
    external_userid: str
    msgid: str  # the handed customer message (a transfer: the handoff it came from)
    servicer: str  # POOL ("") until a servicer takes a handoff to the pool
    at: datetime
    via: str = "handoff"  # handoff | transfer | pool | wecom
    taken_at: datetime | None = None  # via pool: when a servicer took it
    first_reply_at: datetime | None = None
    first_reply_by: str = ""
    ended_at: datetime | None = None
    end: str = ""  # "" open | ended | transferred
    last_customer_at: datetime | None = None
    waiting: Stretch | None = None

    @property
    def first_response_s(self) -> int | None:
        if self.first_reply_at is None:
            return None
        return max(0, int((self.first_reply_at - self.at).total_seconds()))

    def waited_s(self, now: datetime) -> int | None:
        """How long the customer has waited now (None: not waiting): up to the session's
        life, and only while the turn is open."""
        if self.waiting is None or self.end or self.last_customer_at is None:
            return None
        if now >= self.last_customer_at + SESSION_LIFE:
            return None
        return max(0, int((now - self.waiting.since).total_seconds()))


@dataclass
class Unheld:
    """A conversation no turn holds (as far as the walk saw): the customer's first
    unanswered message and their latest."""

    waiting: Stretch | None = None
    last_customer_at: datetime | None = None

    def saw(self, m: KfMessage) -> None:
        if m.origin == CUSTOMER:
            self.last_customer_at = m.send_time
            if m.status == "replied":  # the bot answered it
                self.waiting = None
            elif self.waiting is None:
                self.waiting = Stretch(m.msgid, m.send_time)
        elif m.origin == SERVICER:
            self.waiting = None

    def taken(self, m: KfMessage, servicer: str) -> Handed:
        """The turn of `servicer`, given the session by WeCom (a take from the pool or a
        transfer of a session guidebot did not hand) at event `m`: the customer waits from
        their first unanswered message, or from the event when the walk saw nothing of them
        (their messages came before what it read)."""
        seen = self.last_customer_at is not None
        return Handed(m.open_kfid, m.external_userid, m.msgid, servicer, m.send_time,
                      via=WECOM, last_customer_at=self.last_customer_at if seen else m.send_time,
                      waiting=self.waiting if seen else Stretch(m.msgid, m.send_time))


def change_type(event: Mapping[str, Any]) -> int:
    """A session_status_change event's change_type; 0 when it is not a whole number."""
    try:
        return int(event.get("change_type") or 0)
    except (TypeError, ValueError):
        return 0


def change_of(m: KfMessage) -> tuple[int, str]:
    """A session_status_change event's change_type (0 when it is not a number) and its new
    servicer: only for a take from the pool (1) or a transfer (2), "" otherwise."""
    event = event_of(m.text)
    change = change_type(event)
    if change not in NEW_SERVICER:
        return change, ""
    return change, str(event.get("new_servicer_userid") or m.servicer_userid or "")


def session_words(m: KfMessage) -> tuple[str, dict[str, str]] | None:
    """How a session_status_change event reads: its wording key (conv.session_*) and params,
    `servicer` the userid who took the session from the pool (1) or to whom it was
    transferred (2); the end (3); a change_type the facts do not have, as it came. None for
    any other message (and a take or transfer naming nobody: its kind is all there is)."""
    if m.msgtype != "event" or m.event_type != SESSION_EVENT:
        return None
    change, servicer = change_of(m)
    if change == ENDED:
        return "conv.session_ended", {}
    if change not in KNOWN_CHANGES:
        return "conv.session_unknown", {"change": str(change)}
    if not servicer:
        return None
    return ("conv.session_taken" if change == POOL_TAKEN else "conv.session_transferred",
            {"servicer": servicer})


def _handed_turn(m: KfMessage) -> Handed:
    """The turn a customer message guidebot handed starts: to its guide, or to the pool."""
    return Handed(m.open_kfid, m.external_userid, m.msgid, m.guide or POOL, m.send_time,
                  via="handoff" if m.guide else "pool", last_customer_at=m.send_time,
                  waiting=Stretch(m.msgid, m.send_time))


def walk(messages: Iterable[KfMessage]) -> list[Handed]:
    """Every turn of the conversations in `messages` (each conversation's in send_time
    order; the module docstring has the rules)."""
    turns: list[Handed] = []
    open_turns: dict[tuple[str, str], Handed] = {}
    unheld: dict[tuple[str, str], Unheld] = {}
    for m in sorted(messages, key=lambda m: (m.send_time, m.id or 0)):
        key = (m.open_kfid, m.external_userid)
        turn = open_turns.get(key)
        if m.event_type == SESSION_EVENT:
            change, new = change_of(m)
            if change not in KNOWN_CHANGES:
                continue
            if turn is None:
                idle = unheld.pop(key, Unheld())
                if new and m.route == WECOM:  # else it goes on a turn begun before the read
                    open_turns[key] = idle.taken(m, new)
                    turns.append(open_turns[key])
            elif change == ENDED:
                _close(turn, m.send_time, "ended")
                del open_turns[key]
            elif m.route == WECOM and turn.servicer != POOL:
                # intake found no handoff holding the session any more (it lapsed): WeCom's
                _close(turn, m.send_time, "ended")
                open_turns[key] = Handed(m.open_kfid, m.external_userid, m.msgid, new,
                                         m.send_time, via=WECOM,
                                         last_customer_at=turn.last_customer_at,
                                         waiting=turn.waiting)
                turns.append(open_turns[key])
            elif turn.servicer == POOL:  # guidebot's handoff to the pool is taken
                turn.servicer, turn.taken_at = new, m.send_time
            elif new != turn.servicer:
                _close(turn, m.send_time, "transferred")
                moved = Handed(m.open_kfid, m.external_userid, turn.msgid, new, m.send_time,
                               via="transfer" if change == TRANSFERRED else "pool",
                               last_customer_at=turn.last_customer_at, waiting=turn.waiting)
                open_turns[key] = moved
                turns.append(moved)
        elif m.status == "handoff" and not (turn and turn.servicer == (m.guide or POOL)):
            if turn is not None:
                _close(turn, m.send_time, "transferred")
            open_turns[key] = _handed_turn(m)
            turns.append(open_turns[key])
            unheld.pop(key, None)
        elif turn is None:
            unheld.setdefault(key, Unheld()).saw(m)
        elif m.origin == CUSTOMER:
            turn.last_customer_at = m.send_time
            if turn.waiting is None:
                turn.waiting = Stretch(m.msgid, m.send_time)
        elif m.origin == SERVICER:
            if turn.first_reply_at is None:
                turn.first_reply_at, turn.first_reply_by = m.send_time, m.servicer_userid
            turn.waiting = None
    return turns


def _follow(messages: Iterable[KfMessage], at: datetime, start: T,
            step: Callable[[T, KfMessage], T]) -> T:
    """`step` over the messages in send_time order from `start`; back to `start` after 48 h
    without a message from the customer (the session's life), and at `at` too."""
    state, last = start, None
    for m in sorted(messages, key=lambda m: (m.send_time, m.id or 0)):
        if m.origin == CUSTOMER:
            if last is not None and m.send_time - last >= SESSION_LIFE:
                state = start
            last = m.send_time
        state = step(state, m)
        if last is None:
            last = m.send_time
    return state if last is not None and at - last < SESSION_LIFE else start


def handoff_open(messages: Iterable[KfMessage], at: datetime) -> bool:
    """Whether a handoff record (guidebot's, to a servicer or the pool, or one of WeCom's
    that intake recorded) holds the conversation at `at`, by what was stored of it from its
    latest handoff on: not after the event of the session's end, nor 48 h without a message
    from the customer (the session's life)."""
    def step(held: bool, m: KfMessage) -> bool:
        if m.status == "handoff":
            return True
        return held and not (m.event_type == SESSION_EVENT and change_of(m)[0] == ENDED)

    return _follow(messages, at, False, step)


def with_servicer(messages: Iterable[KfMessage], at: datetime) -> str | None:
    """Who has the conversation at `at` (a customer message's send_time), by what guidebot
    stored of it from its latest handoff or session_status_change event on: the servicer of
    the latest handoff, or the one an event names (a take from the pool, a transfer); None
    after a handoff to the pool, the event of the session's end, or 48 h without a message
    from the customer (the session's life)."""
    def step(servicer: str | None, m: KfMessage) -> str | None:
        if m.status == "handoff":
            return m.guide or None
        if m.event_type == SESSION_EVENT:
            change, new = change_of(m)
            return None if change == ENDED else (new or servicer)
        return servicer

    return _follow(messages, at, None, step)


def _close(turn: Handed, at: datetime, end: str) -> None:
    turn.ended_at, turn.end = at, end


def threshold_minutes(tenant: TenantSettings) -> int:
    """The reply threshold of the figures: handoff_reply_minutes (10 when reminders are off)."""
    return tenant.alerts.handoff_reply_minutes or DEFAULT_MINUTES


@dataclass
class GuideFigures:
    guide: str
    name: str = ""
    handoffs: int = 0
    replied: int = 0
    within: int = 0
    times: list[int] = field(default_factory=list)
    waiting_now: int = 0
    overdue_now: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"guide": self.guide, "name": self.name or self.guide,
                "handoffs": self.handoffs, "replied": self.replied,
                "median_first_response_s": (int(statistics.median(self.times))
                                            if self.times else None),
                "average_first_response_s": (round(sum(self.times) / len(self.times))
                                             if self.times else None),
                "replied_within": self.within,
                "replied_within_share": (round(self.within / self.handoffs, 4)
                                         if self.handoffs else None),
                "waiting_now": self.waiting_now, "overdue_now": self.overdue_now}


class ReplyTimes:
    def __init__(self, settings: Settings, db: Database, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._settings, self._db = settings, db
        self.clock = clock  # tests move it

    async def _turns(self, tenant: str, conversations: Sequence[tuple[str, str]],
                     since: datetime) -> list[Handed]:
        if not conversations:
            return []
        async with self._db.read() as s:
            messages = await repo.conversation_messages(s, tenant=tenant,
                                                        conversations=conversations,
                                                        since=since)
        return walk(messages)

    async def open_turns(self, tenant: str) -> list[Handed]:
        """The turns that are open now and whose customer wrote within the session's life
        (the ones a customer can be waiting in), the longest wait first."""
        now = self.clock()
        async with self._db.read() as s:
            latest = await repo.live_handoffs(s, tenant=tenant, since=now - SESSION_LIFE)
        if not latest:
            return []
        turns = await self._turns(tenant, list(latest), min(latest.values()))
        found = [t for t in turns if not t.end and t.waited_s(now) is not None]
        return sorted(found, key=lambda t: -(t.waited_s(now) or 0))

    async def turns_in(self, tenant: str, start: datetime, end: datetime) -> list[Handed]:
        """The turns that began in [start, end) (handoffs then, and transfers after them)."""
        async with self._db.read() as s:
            conversations = await repo.handed_conversations(s, tenant=tenant, since=start,
                                                            until=end)
        return [t for t in await self._turns(tenant, conversations, start)
                if start <= t.at < end]

    async def summary(self, tenant_id: str, day_from: date, day_to: date) -> dict[str, Any]:
        """Per guide: the turns that began in the tenant's days [day_from, day_to], replied,
        median and average first response, replied within the threshold; waiting and
        overdue now (whenever handed). A handoff guidebot made to the pool counts from the
        time it entered the pool: under the guide "" (the pool) until a servicer takes it,
        then under them, its first response measured from that time."""
        tenant = self._settings.tenant(tenant_id)
        start, end = tenant.day_bounds(day_from, day_to)
        minutes = threshold_minutes(tenant)
        now = self.clock()
        figures: dict[str, GuideFigures] = {}
        for turn in await self.turns_in(tenant_id, start, end):
            row = figures.setdefault(turn.servicer, GuideFigures(turn.servicer))
            row.handoffs += 1
            if turn.first_response_s is not None:
                row.replied += 1
                row.times.append(turn.first_response_s)
                row.within += turn.first_response_s <= minutes * 60
        for turn in await self.open_turns(tenant_id):
            row = figures.setdefault(turn.servicer, GuideFigures(turn.servicer))
            row.waiting_now += 1
            row.overdue_now += (turn.waited_s(now) or 0) >= minutes * 60
        async with self._db.read() as s:
            names = await contacts_repo.guide_names(s, tenant=tenant_id,
                                                    userids=list(figures))
        rows = []
        for guide, row in sorted(figures.items()):
            row.name = names.get(guide, ("", ""))[0]
            rows.append(row.as_dict())
        total = GuideFigures("")
        for row in figures.values():
            total.handoffs += row.handoffs
            total.replied += row.replied
            total.within += row.within
            total.times += row.times
            total.waiting_now += row.waiting_now
            total.overdue_now += row.overdue_now
        totals = total.as_dict()
        del totals["guide"], totals["name"]
        return {"from": day_from.isoformat(), "to": day_to.isoformat(),
                "threshold_minutes": minutes, "guides": rows, "totals": totals}

    async def listing(self, tenant_id: str, status: str, day_from: date,
                      day_to: date) -> dict[str, Any]:
        """The turns as rows: `waiting` those waiting now (whenever handed, the range not
        applied), `replied` and `all` those that began in the range."""
        tenant = self._settings.tenant(tenant_id)
        minutes = threshold_minutes(tenant)
        now = self.clock()
        if status == "waiting":
            turns = await self.open_turns(tenant_id)
        else:
            start, end = tenant.day_bounds(day_from, day_to)
            turns = await self.turns_in(tenant_id, start, end)
            if status == "replied":
                turns = [t for t in turns if t.first_reply_at is not None]
            turns.sort(key=lambda t: t.at, reverse=True)
        async with self._db.read() as s:
            names = await contacts_repo.guide_names(s, tenant=tenant_id,
                                                    userids=list({t.servicer for t in turns}))
            customers = await repo.customers(s, tenant=tenant_id, external_userids=list(
                {t.external_userid for t in turns}))
        items = []
        for t in turns:
            waited = t.waited_s(now)
            contact = customers.get(t.external_userid)
            items.append({
                "msgid": t.msgid, "open_kfid": t.open_kfid, "external_userid": t.external_userid,
                "customer_name": contact.name if contact is not None else "",
                "guide": t.servicer, "guide_name": names.get(t.servicer, ("", ""))[0],
                "via": t.via, "handed_at": t.at.isoformat(),
                "taken_at": t.taken_at.isoformat() if t.taken_at else None,
                "first_reply_at": t.first_reply_at.isoformat() if t.first_reply_at else None,
                "first_response_s": t.first_response_s,
                "end": t.end or None, "ended_at": t.ended_at.isoformat() if t.ended_at else None,
                "waiting_since": (t.waiting.since.isoformat()
                                  if waited is not None and t.waiting else None),
                "waited_s": waited,
                "overdue": waited is not None and waited >= minutes * 60})
        return {"status": status, "from": day_from.isoformat(), "to": day_to.isoformat(),
                "threshold_minutes": minutes, "items": items}
