"""客户资料 in a segment's conditions: whether a customer's stored profile field value
(customer_field_values) meets a condition, as an EXISTS clause on the customer, the same on
SQLite and PostgreSQL.

A multi value is stored as the JSON list json.dumps writes; it is read with each database's
JSON functions, never matched as text (an option may hold quotes, commas or %): SQLite's
json_each, PostgreSQL's jsonb containment. A stored text that is not such a list (a field
whose kind became multi since) counts as the one option it reads as, as the service shows it.
A number is compared as a number (a stored text that is not one matches no bound), a date
(always YYYY-MM-DD) as text in byte order, which is the days' order."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Numeric, Text, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from guidebot.db.models import Customer
from guidebot.db.models_profile import CustomerFieldValue

# The JSON text json.dumps(list_of_strings, ensure_ascii=False) writes: only such a text is
# cast to jsonb on PostgreSQL (whose cast would fail on anything else).
_STRING = r'"([^"\\\x01-\x1f]|\\(["\\/bfnrt]|u[0-9a-fA-F]{4}))*"'
JSON_LIST = rf"^\[({_STRING}(, {_STRING})*)?\]$"
NUMBER = r"^-?[0-9]{1,15}(\.[0-9]{1,6})?$"
DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


class list_holds(FunctionElement[bool]):  # noqa: N801 (an SQL function's name)
    """list_holds(stored_text, option): the stored multi value holds the option."""

    type = Boolean()
    inherit_cache = True
    name = "list_holds"


@compiles(list_holds, "sqlite")
def _holds_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    text, option = (compiler.process(c, **kw) for c in element.clauses)
    return (f"EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid({text}) THEN {text} "
            f"ELSE json_array({text}) END) AS held WHERE held.value = {option})")


@compiles(list_holds, "postgresql")
def _holds_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    text, option = (compiler.process(c, **kw) for c in element.clauses)
    shape = compiler.process(literal(JSON_LIST, Text()), **kw)
    return (f"(CASE WHEN {text} ~ {shape} THEN CAST({text} AS JSONB) @> "
            f"jsonb_build_array(CAST({option} AS TEXT)) ELSE {text} = {option} END)")


def _case(element: Any, compiler: Any, kw: Any, test: str, then: str) -> str:
    """CASE WHEN test THEN then END over the element's one argument, {t} in both."""
    text = compiler.process(element.clauses, **kw)
    return f"(CASE WHEN {test.format(t=text)} THEN {then.format(t=text)} END)"


def _matching(compiler: Any, kw: Any, pattern: str) -> str:
    """`~ <pattern>` (PostgreSQL's regular expression match), the pattern a parameter."""
    return "{t} ~ " + compiler.process(literal(pattern, Text()), **kw).replace("{", "{{")


class number_of(FunctionElement[Decimal]):  # noqa: N801
    """number_of(stored_text): the number it holds, NULL for a text that is not one."""

    type, inherit_cache, name = Numeric(), True, "number_of"


@compiles(number_of, "sqlite")
def _number_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return _case(element, compiler, kw, "{t} NOT GLOB '*[^0-9.-]*' AND {t} GLOB '*[0-9]*'",
                 "CAST({t} AS REAL)")


@compiles(number_of, "postgresql")
def _number_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return _case(element, compiler, kw, _matching(compiler, kw, NUMBER), "CAST({t} AS NUMERIC)")


class day_of(FunctionElement[str]):  # noqa: N801
    """day_of(stored_text): the YYYY-MM-DD it holds (compared byte by byte), else NULL."""

    type, inherit_cache, name = Text(), True, "day_of"


@compiles(day_of, "sqlite")
def _day_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return _case(element, compiler, kw,
                 "{t} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'", "{t}")


@compiles(day_of, "postgresql")
def _day_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return _case(element, compiler, kw, _matching(compiler, kw, DAY), "{t}") + ' COLLATE "C"'


@dataclass(frozen=True)
class FieldMatch:
    """One profile field condition: `op` set / unset (has a value or not), in (a choice
    value one of `values`), has_any / has_all (a multi value holding any / every one of
    `values`), days (a date within [low, high], YYYY-MM-DD, either may be empty), numbers (a
    number within [low, high], decimal texts, either may be empty)."""

    field: str
    op: str
    values: tuple[str, ...] = ()
    low: str = ""
    high: str = ""


def matches(tenant: str, match: FieldMatch) -> Any:
    """Whether the customer (Customer of the enclosing query) meets the condition."""
    v = CustomerFieldValue
    stored = select(v.field).where(
        v.tenant == tenant, v.external_userid == Customer.external_userid,  # type: ignore[arg-type]
        v.field == match.field)  # type: ignore[arg-type]
    value: Any = v.value
    if match.op == "unset":
        return ~stored.exists()
    if match.op == "in":
        stored = stored.where(value.in_(list(match.values)))
    elif match.op == "has_any":
        stored = stored.where(or_(*(list_holds(value, literal(o, Text())) for o in match.values)))
    elif match.op == "has_all":
        for option in match.values:
            stored = stored.where(list_holds(value, literal(option, Text())))
    elif match.op in ("days", "numbers"):
        def bound(text: str) -> Any:
            return literal(text, Text()) if match.op == "days" else literal(Decimal(text),
                                                                             Numeric())
        read = day_of(value) if match.op == "days" else number_of(value)
        stored = stored.where(read.is_not(None))
        if match.low:
            stored = stored.where(read >= bound(match.low))
        if match.high:
            stored = stored.where(read <= bound(match.high))
    return stored.exists()

