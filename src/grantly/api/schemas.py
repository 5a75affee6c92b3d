"""The JSON the resource API speaks, in Factorial's shapes (docs/factorial-api.md §3, §4).

Responses: ids are integers (factorialhr declares them ``int``; the official SDK accepts
anything), the eleven keys both SDKs require are always present and non-null, dates are
``YYYY-MM-DD``, timestamps ISO-8601 UTC, cursors and the credential id strings. Fields a
reader may not see are present and null (Factorial's rule for user tokens).

Request bodies: both SDKs send only the keys that are set, the official one with ids as
strings, so ids are coerced and every update is partial. Keys Grantly does not keep
(``nationality``, contract fields, ...) are ignored, as unknown query parameters are. Every
rule a value must follow is stated in the OpenAPI description (lengths, ranges, patterns), so
that a value the description allows is never refused for its shape.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
)
from pydantic.json_schema import SkipJsonSchema

MAX_ID = 2**31 - 1  # ids beyond what the database can hold exist nowhere

BankNumberFormat = Literal[
    "iban",
    "sort_code_and_account_number",
    "routing_number_and_account_number",
    "clabe",
    "other",
    "bank_name_and_account_number",
]

# Character sets are spelled out: JSON Schema (ECMA), Rust (pydantic) and Python regexes
# disagree on what ``\s`` and ``\d`` match.
_CONTROL = r"\x00-\x1f\x7f-\x9f"  # C0, DEL and C1 control characters
_SPACE = r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
TEXT_PATTERN = rf"^[^{_CONTROL}]*$"
NAME_PATTERN = rf"^[^{_CONTROL}]*[^{_CONTROL}{_SPACE}][^{_CONTROL}]*$"
EMAIL_PATTERN = rf"^[^@{_CONTROL}{_SPACE}]+@[^@{_CONTROL}{_SPACE}]+$"


def _stripped(value: str) -> str:
    return value.strip()


def _email(value: str) -> str:
    return value.strip().lower()


def _text(max_length: int, pattern: str = TEXT_PATTERN, min_length: int = 0) -> Any:
    return Field(min_length=min_length, max_length=max_length, pattern=pattern)


Name = Annotated[str, _text(100, NAME_PATTERN, min_length=1), AfterValidator(_stripped)]
LastName = Annotated[str, _text(100), AfterValidator(_stripped)]
Email = Annotated[
    str, Field(min_length=3, max_length=320, pattern=EMAIL_PATTERN), AfterValidator(_email)
]


# Ids: integers, or digit strings as the official SDK sends them. No other coercion (pydantic's
# lax mode would take true for 1), so the description states exactly what is accepted.
_ID_STRING = r"^[1-9][0-9]{0,8}$"
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _integer(value: object) -> object:
    """A JSON integer: also ``5.0`` (JSON Schema's integer), never ``true`` or ``"5"``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer")
    return value


def _id(value: object) -> object:
    if isinstance(value, str) and re.fullmatch(_ID_STRING, value):
        return int(value)
    if isinstance(value, str):
        raise ValueError("must be an integer id (or its digits in a string)")
    return _integer(value)


def _day(value: object) -> object:
    if isinstance(value, str) and _DAY.fullmatch(value):
        return value
    raise ValueError("must be a date written YYYY-MM-DD")


def _flag(value: object) -> object:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ValueError("must be true or false")


Id = Annotated[
    int,
    Field(ge=1, le=MAX_ID),
    BeforeValidator(_id),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                {"type": "string", "pattern": _ID_STRING},
            ]
        }
    ),
]
Day = Annotated[dt.date, BeforeValidator(_day)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Text40 = Annotated[str, _text(40), AfterValidator(_stripped)]
Text64 = Annotated[str, _text(64), AfterValidator(_stripped)]
Text100 = Annotated[str, _text(100), AfterValidator(_stripped)]
Text1000 = Annotated[str, _text(1000), AfterValidator(_stripped)]
SwiftBic = Annotated[str, _text(11), AfterValidator(_stripped)]
SalaryCents = Annotated[int, Field(ge=0, le=10**15), BeforeValidator(_integer)]


class Employee(BaseModel):
    """Factorial's ``employees_employee``: the keys Grantly keeps, plus ``salary_cents`` and
    ``role`` (extras both SDKs ignore)."""

    id: int
    access_id: int = Field(description="Grantly's sign-in account is the employee: equals id.")
    first_name: str
    last_name: str
    full_name: str
    preferred_name: str | None
    email: str | None = Field(description="The work email, also the sign-in email.")
    login_email: str | None
    company_id: int
    location_id: int
    manager_id: int | None
    role: Literal["admin", "employee"] = Field(description="Extra: admin of the company or not.")
    created_at: dt.datetime
    updated_at: dt.datetime
    active: bool = Field(description="False once the employee is terminated.")
    is_terminating: bool = Field(description="Terminated with a date still in the future.")
    terminated_on: dt.date | None
    attendable: bool
    birthday_on: dt.date | None = Field(description="Sensitive: null unless the reader may see it.")
    phone_number: str | None = Field(description="Sensitive.")
    personal_email: str | None = Field(description="Sensitive.")
    bank_number: str | None = Field(description="Sensitive.")
    bank_number_format: BankNumberFormat | None = Field(description="Sensitive.")
    swift_bic: str | None = Field(description="Sensitive.")
    social_security_number: str | None = Field(description="Sensitive.")
    termination_reason: str | None = Field(description="Sensitive.")
    salary_cents: int | None = Field(
        description="Extra, sensitive: yearly gross salary in cents of the company's currency."
    )


class PageMeta(BaseModel):
    """Both SDKs require ``limit``, ``total``, ``has_next_page`` and ``has_previous_page``;
    the official one follows ``end_cursor`` while ``has_next_page`` is true."""

    limit: int
    total: int
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    data: list[Item]
    meta: PageMeta


class Credential(BaseModel):
    """Factorial's ``api_public_credential``: the credential that made the request. ``id``
    is a string and ``employee_id`` always present (the official SDK pops it)."""

    id: str = Field(description="access_token_<id>, company_token_<id> or api_key_<id>.")
    company_id: int
    employee_id: int | None
    email: str | None = None
    login_email: str | None = None
    full_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    role: Literal["admin", "employee"] | None = None
    name: str | None = Field(default=None, description="The company's name (company credentials).")
    scope: str = Field(description="Extra: the scopes the credential holds.")


# A key that may be left out but is never null: the description says so (``SkipJsonSchema``
# hides the None), and the handler refuses an explicit null (``NOT_NULL``).
NOT_NULL = ("id", "access_id", "first_name", "last_name", "location_id", "attendable")


class _PersonalFields(BaseModel):
    """The optional, sensitive fields an employee is created or changed with."""

    birthday_on: Day | None = None
    phone_number: Text40 | None = None
    personal_email: Email | None = None
    bank_number: Text64 | None = None
    bank_number_format: BankNumberFormat | None = None
    swift_bic: SwiftBic | None = None
    social_security_number: Text40 | None = None
    salary_cents: SalaryCents | None = None


class EmployeeUpdate(_PersonalFields):
    """``PUT employees/employees/{id}``: a partial update; null clears an optional field."""

    model_config = ConfigDict(extra="ignore")

    id: Id | SkipJsonSchema[None] = Field(
        default=None, description="If sent, must be the id in the path."
    )
    access_id: Id | SkipJsonSchema[None] = Field(
        default=None, description="If sent, must be the id in the path."
    )
    first_name: Name | SkipJsonSchema[None] = None
    last_name: LastName | SkipJsonSchema[None] = None
    preferred_name: Text100 | None = None
    location_id: Id | SkipJsonSchema[None] = None
    manager_id: Id | None = None
    attendable: StrictBool | SkipJsonSchema[None] = None


class EmployeeCreate(_PersonalFields):
    """``POST employees/employees/create_with_contract`` (answered 200, as Factorial does).
    Contract fields are accepted and ignored: Grantly keeps no contracts."""

    model_config = ConfigDict(extra="ignore")

    company_id: Id
    first_name: Name
    last_name: LastName
    email: Email
    preferred_name: Text100 | None = None
    location_id: Id | SkipJsonSchema[None] = None
    manager_id: Id | None = None


class Termination(BaseModel):
    """``POST employees/employees/terminate``: the employee id is in the body."""

    model_config = ConfigDict(extra="ignore")

    id: Id
    terminated_on: Day
    termination_reason: Text1000 | None = None


class Untermination(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Id
