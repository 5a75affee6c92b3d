"""``/audit``: the company's security events, for its admins: filtered and paged on the server
(a GET form, so a filtered page is a link to share), and the filtered set exported as CSV or
JSON (``/audit/export.csv``, ``/audit/export.json``)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from ..http import NO_STORE
from ..oauth.models import User
from ..services import services
from ..store.audit import EVENTS, AuditEvent, AuditQuery, Position, family
from ..store.unit import Store
from . import audit_view, pages
from .pages import render, signed_in_user
from .responses import error_page

router = APIRouter()

PAGE_SIZE = 50
# "10,000 or more events": counting further would scan the company's whole trail.
COUNT_LIMIT = 10_000
# An export holds the newest this many events of the filter; narrower dates reach the rest.
EXPORT_LIMIT = 100_000
EXPORT_BATCH = 1_000

_MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL
_MAX_LENGTH = 320
_FIELDS = ("event", "person", "application", "from", "to")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class Filters:
    """The query string, read: what to ask the store, what to show in the form and carry in
    links, and what was wrong with it."""

    query: AuditQuery = field(default_factory=AuditQuery)
    values: dict[str, str] = field(default_factory=dict)  # the filter fields, as given
    before: int | None = None
    after: int | None = None
    problems: list[str] = field(default_factory=list)

    def link(self, path: str = "/audit", **cursor: int) -> str:
        params = {k: v for k, v in self.values.items() if v} | {
            k: str(v) for k, v in cursor.items()
        }
        return path + ("?" + urlencode(params) if params else "")


async def _admin(request: Request, uow: Store) -> User | Response:
    """The signed-in admin, or the answer for anyone else."""
    user = await signed_in_user(request, uow)
    if user is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urlencode({"next": here}), status_code=303)
    if not user.admin:
        return error_page(
            request,
            "Only admins see the audit trail",
            "The audit trail records your company's security events; ask an admin.",
            403,
        )
    return user


@router.get("/audit", include_in_schema=False)
async def audit_trail(request: Request) -> Response:
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        user = await _admin(request, uow)
        if isinstance(user, Response):
            return user
        filters = await _filters(request, uow, user)
        applications = await uow.applications.for_company(user.company_id)
        page = count = None
        if not filters.problems:
            page = await uow.audit.page(
                user.company_id,
                filters.query,
                size=PAGE_SIZE,
                before=filters.before,
                after=filters.after,
            )
            if page is None:
                filters.problems.append(
                    "The page you asked for starts at an event that is not in your company's "
                    "trail (any more: old events are pruned): start again from the newest."
                )
            else:
                count = await uow.audit.count(user.company_id, filters.query, COUNT_LIMIT)
    response = render(
        request,
        "audit.html",
        400 if filters.problems else 200,
        filters=filters,
        page=page,
        count_text=_count_text(count, filters.query != AuditQuery()),
        export_limit=f"{EXPORT_LIMIT:,}",
        families=audit_view.families(),
        applications=applications,
        details=audit_view.details,
        iso_time=audit_view.iso_time,
        utc_time=audit_view.utc_time,
    )
    response.headers.update(NO_STORE)  # the trail names people and their addresses
    return response


@router.get("/audit/export.csv", include_in_schema=False)
async def export_csv(request: Request) -> Response:
    return await _export(request, "csv")


@router.get("/audit/export.json", include_in_schema=False)
async def export_json(request: Request) -> Response:
    return await _export(request, "json")


async def _export(request: Request, form: str) -> Response:
    """The filtered set, newest first, streamed in bounded reads (never the whole trail in
    memory), at most ``EXPORT_LIMIT`` events. A filter that cannot be read gets the page and
    its message, as the page would."""
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        user = await _admin(request, uow)
        if isinstance(user, Response):
            return user
        filters = await _filters(request, uow, user, cursor=False)
    if filters.problems:
        return await audit_trail(request)
    export = _Export(request, user.company_id, filters.query)
    body = _csv(export) if form == "csv" else _json(export, filters)
    today = svc.clock.now()
    name = f"grantly-audit-{datetime.fromtimestamp(today, tz=UTC):%Y-%m-%d}.{form}"
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8" if form == "csv" else "application/json",
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'},
    )


class _Export:
    """The events of an export, newest first, a batch at a time, each read in a unit of its
    own (a scan: ``long_read``), so that a slow download holds no connection between batches.
    ``truncated`` once the filter turned out to have more than ``EXPORT_LIMIT`` events."""

    def __init__(self, request: Request, company_id: int, query: AuditQuery) -> None:
        self.db = services(request).db
        self.company_id = company_id
        self.query = query
        self.truncated = False

    async def batches(self) -> AsyncIterator[list[AuditEvent]]:
        position: Position | None = None
        left = EXPORT_LIMIT
        while True:
            size = min(EXPORT_BATCH, left + 1)  # one past the limit tells whether it cuts
            async with self.db.long_read() as uow:
                batch = await uow.audit.batch(self.company_id, self.query, position, size)
            if len(batch) > left:
                self.truncated, batch = True, batch[:left]
            if batch:
                yield batch
                left -= len(batch)
                position = (batch[-1].created_at, batch[-1].id)
            if self.truncated or len(batch) < size:
                return


async def _csv(export: _Export) -> AsyncIterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(audit_view.CSV_COLUMNS)
    yield out.getvalue()
    async for batch in export.batches():
        out.seek(0)
        out.truncate()
        writer.writerows(audit_view.as_csv_row(event) for event in batch)
        yield out.getvalue()


async def _json(export: _Export, filters: Filters) -> AsyncIterator[str]:
    """``{"filters": …, "events": [...], "exported": n, "truncated": bool}``, written as it is
    read: ``truncated`` says the filter has more events than ``EXPORT_LIMIT``."""
    yield '{"filters": ' + json.dumps({k: v for k, v in filters.values.items() if v})
    yield ', "events": ['
    exported = 0
    async for batch in export.batches():
        records = ",\n".join(json.dumps(audit_view.as_record(event)) for event in batch)
        yield ("\n" if exported == 0 else ",\n") + records
        exported += len(batch)
    yield f'\n], "exported": {exported}, "limit": {EXPORT_LIMIT}, '
    yield f'"truncated": {json.dumps(export.truncated)}}}\n'


def _count_text(count: int | None, filtered: bool) -> str:
    if count is None:
        return ""
    if count >= COUNT_LIMIT:
        text = f"{COUNT_LIMIT:,} or more events"
    else:
        text = pages.plural(count, "event") if count else "No events"
    if not filtered:
        return text
    return text + (" matches these filters" if count == 1 else " match these filters")


# --- reading the filters ---------------------------------------------------------------------


async def _filters(request: Request, uow: Store, user: User, cursor: bool = True) -> Filters:
    """The filters of the query string, each checked; a value that cannot be read is a
    problem the page names, never a server error."""
    params = request.query_params
    filters = Filters(values={name: params.get(name, "").strip() for name in _FIELDS})
    values, problems = filters.values, filters.problems
    for name, value in values.items():
        if len(value) > _MAX_LENGTH:
            problems.append(f"The {name} filter is too long.")
            values[name] = ""
    event = values["event"] or None
    if event is not None and not (event in EVENTS or (event.endswith(".*") and family(event))):
        problems.append(f"There is no event type “{event}”: choose one from the list.")
        event = None
    actor = await _person(uow, user, values["person"], problems)
    if actor is not None:
        values["person"] = actor.email
    application = _id(values["application"], "application", problems)
    since = _day(values["from"], "From", problems)
    until = _day(values["to"], "To", problems)
    if since and until and since > until:
        problems.append("The “from” date is after the “to” date.")
    filters.query = AuditQuery(
        event=event,
        actor_user_id=actor.id if actor else None,
        application_id=application,
        since=_midnight(since) if since else None,
        until=_midnight(until + timedelta(days=1)) if until else None,  # the whole "to" day
    )
    if cursor:
        filters.before = _id(params.get("before", ""), "page", problems)
        filters.after = _id(params.get("after", ""), "page", problems)
        if filters.before is not None and filters.after is not None:
            problems.append("A page is either before an event or after one, not both.")
    return filters


async def _person(uow: Store, user: User, value: str, problems: list[str]) -> User | None:
    """A person of the admin's company, by email address or id."""
    if not value:
        return None
    if "@" in value:
        person = await uow.accounts.user_by_email(value)
        if person is None or person.company_id != user.company_id:
            problems.append(f"No one at your company has the email address “{value}”.")
            return None
        return person
    person_id = _id(value, "person", problems)
    if person_id is None:
        return None
    person = await uow.accounts.user(person_id)
    if person is None or person.company_id != user.company_id:
        problems.append(f"No one at your company has the id {person_id}.")
        return None
    return person


def _id(value: str, name: str, problems: list[str]) -> int | None:
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) <= _MAX_ID:
        what = {"person": "A person", "application": "An application", "page": "A page"}[name]
        if name == "person":
            problems.append(f"{what} is named by an email address or an id, not “{value}”.")
        else:
            problems.append(f"{what} is named by a number from 1 to {_MAX_ID}, not “{value}”.")
        return None
    return int(value)


def _day(value: str, name: str, problems: list[str]) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value) if _DAY.fullmatch(value) else None
    except ValueError:
        day = None
    if day is None:
        problems.append(f"“{name}” is a date written 2026-12-31, not “{value}”.")
        return None
    if day.year < 1970 or day.year > 9998:
        problems.append(f"“{name}” is a day from 1970 to 9998, not {value}.")
        return None
    return day


def _midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
