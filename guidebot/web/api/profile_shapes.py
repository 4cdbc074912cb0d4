"""Request and answer shapes of a customer's profile fields (客户资料), web/api/contacts.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from guidebot.content.profile_fields import KINDS, MAX_FIELDS
from guidebot.web.api.shapes import Answer, Shape

FieldId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$",
                               description="a field's id in profile_fields.toml")]
# checked against the field's kind by the service (contacts/profile_fields.py), which names
# the field in its refusal: a bool is no number, a number no text
FieldValue = Annotated[Any, WithJsonSchema({
    "anyOf": [{"type": "string"}, {"type": "number"},
              {"type": "array", "items": {"type": "string"}}, {"type": "null"}],
    "description": "text: a string (at most the field's max_length, trimmed); choice: one of "
                   "its options; multi: a list of its options; date: \"YYYY-MM-DD\"; number: "
                   "a number (or its decimal text: up to 15 digits, 6 after the point); null, "
                   "\"\" or [] clears the value"})]


class FieldsSet(Shape):
    values: dict[FieldId, FieldValue] = Field(
        max_length=MAX_FIELDS, description=(
            "the fields to set or clear; those left out stay as they are. A choice or multi "
            "value no longer among the options may be sent back as stored, not chosen anew. "
            "Any bad value refuses the whole request (400 naming `values.<id>`, with a "
            "`code`: profile.unknown_field, profile.text, profile.choice, profile.multi, "
            "profile.date or profile.number); nothing is stored"))


class ProfileFieldValue(Answer):
    id: str
    label: str = Field(description="what guides and HQ read")
    kind: Literal[KINDS]  # type: ignore[valid-type]
    options: list[str] = Field(description="choice, multi: the options offered")
    max_length: int = Field(description="text: the most characters")
    guides_edit: bool = Field(description="whether guides may set it in the sidebar")
    value: str | float | list[str] | None = Field(description=(
        "the customer's value: a string (text, choice, date \"YYYY-MM-DD\"), a number, a "
        "list of options (multi), or null when unset"))
    stale: list[str] = Field(description=(
        "choice, multi: values kept that are no longer among the options"))
    set_by: str | None = Field(description="who set it: a guide's userid or \"hq\"")
    set_by_name: str | None = Field(description="the guide's name (null when HQ set it)")
    at: str | None = Field(description="when it was set (UTC, ISO 8601)")
    when: str | None = Field(description="when it was set, YYYY-MM-DD HH:MM in the tenant's "
                             "time zone")


class CustomerFields(Answer):
    external_userid: str
    fields: list[ProfileFieldValue] = Field(description=(
        "the fields of profile_fields.toml in its order (values of fields removed from the "
        "file are kept, not listed)"))
