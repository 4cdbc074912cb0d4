"""Request and answer shapes of the birthday routes (web/api/birthdays.py, 生日关怀)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from guidebot.web.api.shapes import Answer, ExternalUserid, Shape

BIRTHDAY = ('"MM-DD", or "YYYY-MM-DD" when the year is known (1900–2100); a day that exists '
            "(02-29 without a year, or in a leap year); birthday SOPs celebrate Feb 29 on "
            "Feb 28 in years without one")
MAX_ROWS = 10_000
BirthdayText = Annotated[str, Field(max_length=16, description=BIRTHDAY)]


class BirthdaySet(Shape):
    birthday: BirthdayText | None = Field(description=BIRTHDAY + "; null forgets it")


class BirthdayRow(Shape):
    """One row of an import: the customer by external_userid or unionid (resolved from the
    identities stored for orders; external_userid wins when both are given)."""

    external_userid: ExternalUserid | None = None
    unionid: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    birthday: BirthdayText | None = Field(description=BIRTHDAY + "; null forgets it")


class BirthdaysImport(Shape):
    # Rows are read one by one (BirthdayRow): a bad row is listed in `failed`, the others
    # are stored.
    rows: list[Annotated[dict[str, Any], WithJsonSchema(
        BirthdayRow.model_json_schema())]] = Field(min_length=1, max_length=MAX_ROWS)


class Birthday(Answer):
    external_userid: str
    birthday: str | None


class FailedRow(Answer):
    index: int = Field(description="the row's place in `rows`, from 0")
    field: str
    reason: str


class UnknownRow(Answer):
    index: int
    external_userid: str | None = None
    unionid: str | None = None


class BirthdaysImported(Answer):
    stored: int = Field(description="birthdays set")
    cleared: int = Field(description="birthdays forgotten (rows with null)")
    failed: list[FailedRow] = Field(description="rows not read, with what is wrong")
    unknown: list[UnknownRow] = Field(description="rows naming no customer of the tenant "
                                      "(none is created)")
