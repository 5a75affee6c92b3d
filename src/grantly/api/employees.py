"""``/api/{version}/resources/employees/employees``: Factorial's employees, as both SDKs call
them (docs/factorial-api.md §4, §5).

Reads need the ``read`` scope; changes need ``write`` and a principal that acts for the company
(``routing.ResourceRoute``). Every answer is 200 with JSON, also for the actions, since the
official SDK accepts nothing else and factorialhr reads a body from every success.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, TypeVar, cast

from fastapi import APIRouter, Body, Path, Query
from pydantic import BeforeValidator
from starlette.requests import Request
from starlette.responses import Response

from ..http import NO_STORE
from ..services import services
from ..store.errors import Conflict
from ..store.people import Employee as EmployeeRecord
from ..store.people import EmployeeFilter, PageRequest, People
from ..store.unit import Store
from .pagination import CURSOR_PATTERN, decode_cursor, encode_cursor, page_size
from .principal import Principal
from .problems import (
    ERROR_RESPONSES,
    ApiProblem,
    ErrorBody,
    conflict,
    forbidden,
    invalid,
)
from .problems import not_found as _not_found
from .routing import (
    RESOURCES_PREFIX,
    SECURITY,
    CurrentPrincipal,
    ResourceRoute,
    UnitOfWork,
    Version,
)
from .schemas import (
    EMAIL_PATTERN,
    MAX_ID,
    NOT_NULL,
    TEXT_PATTERN,
    BankNumberFormat,
    Day,
    Employee,
    EmployeeCreate,
    EmployeeUpdate,
    Flag,
    Page,
    PageMeta,
    Termination,
    Untermination,
)

router = APIRouter(
    prefix=RESOURCES_PREFIX + "/employees/employees",
    route_class=ResourceRoute,
    dependencies=SECURITY,
    responses=ERROR_RESPONSES,
    tags=["employees"],
)


def _digits(value: object) -> object:
    """An id is written in ASCII digits, without leading zeros. Pydantic's lax integers also
    take "1.0", "01", "1_0" and other scripts' digits: one employee would have many URLs, and
    a cache or a log would not see them as one."""
    if isinstance(value, str) and not (
        value.isascii() and value.isdigit() and (value == "0" or not value.startswith("0"))
    ):
        raise ValueError("an id is a whole number written in digits (0-9), without leading zeros")
    return value


EmployeeId = Annotated[
    int, Path(ge=1, le=MAX_ID, description="The employee's id."), BeforeValidator(_digits)
]
IdList = list[Annotated[int, Query(ge=1, le=MAX_ID), BeforeValidator(_digits)]]
LIST_LIMIT = 100  # values in one array filter


T = TypeVar("T")


def not_found() -> ApiProblem:
    return _not_found("there is no such employee in your company.")


def _timestamp(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _today(request: Request) -> dt.date:
    return _timestamp(services(request).clock.now()).date()


def view(employee: EmployeeRecord, principal: Principal, today: dt.date) -> Employee:
    """The employee as this principal may see them: directory fields for everyone in the
    company, sensitive ones (null otherwise) for the employee, admins and company credentials
    (Factorial: "fields the user may not see come back null")."""
    sensitive = principal.sees_sensitive_fields_of(employee.id)

    def secret(value: T | None) -> T | None:
        return value if sensitive else None

    return Employee(
        id=employee.id,
        access_id=employee.id,
        first_name=employee.first_name,
        last_name=employee.last_name,
        full_name=employee.full_name,
        preferred_name=employee.preferred_name,
        email=employee.email,
        login_email=employee.email,
        company_id=employee.company_id,
        location_id=employee.location_id,
        manager_id=employee.manager_id,
        role="admin" if employee.admin else "employee",
        created_at=_timestamp(employee.created_at),
        updated_at=_timestamp(employee.updated_at),
        active=employee.active,
        is_terminating=employee.terminated_on is not None and employee.terminated_on > today,
        terminated_on=employee.terminated_on,
        attendable=employee.attendable,
        birthday_on=secret(employee.birthday_on),
        phone_number=secret(employee.phone_number),
        personal_email=secret(employee.personal_email),
        bank_number=secret(employee.bank_number),
        bank_number_format=secret(cast(BankNumberFormat | None, employee.bank_number_format)),
        swift_bic=secret(employee.swift_bic),
        social_security_number=secret(employee.social_security_number),
        termination_reason=secret(employee.termination_reason),
        salary_cents=secret(employee.salary_cents),
    )


def _no_store(response: Response) -> None:
    response.headers.update(NO_STORE)


@router.get(
    "",
    response_model=Page[Employee],
    summary="List the company's employees (scope: read)",
    operation_id="list_employees",
)
async def list_employees(
    version: Version,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    uow: UnitOfWork,
    page: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Offset pagination: 1-based page.")
    ] = None,
    limit: Annotated[
        int | None, Query(ge=1, description="Page size; at most 100 (larger is capped).")
    ] = None,
    after_id: Annotated[
        str | None,
        Query(pattern=CURSOR_PATTERN, description="Cursor pagination: meta.end_cursor."),
    ] = None,
    before_id: Annotated[
        str | None,
        Query(pattern=CURSOR_PATTERN, description="Cursor pagination: meta.start_cursor."),
    ] = None,
    ids: Annotated[IdList | None, Query(alias="ids[]", max_length=LIST_LIMIT)] = None,
    access_ids: Annotated[IdList | None, Query(alias="access_ids[]", max_length=LIST_LIMIT)] = None,
    emails: Annotated[
        list[Annotated[str, Query(max_length=320, pattern=EMAIL_PATTERN)]] | None,
        Query(alias="emails[]", max_length=LIST_LIMIT),
    ] = None,
    location_ids: Annotated[
        IdList | None, Query(alias="location_ids[]", max_length=LIST_LIMIT)
    ] = None,
    manager_ids: Annotated[
        IdList | None, Query(alias="manager_ids[]", max_length=LIST_LIMIT)
    ] = None,
    only_active: Annotated[Flag, Query(description="Only employees not terminated.")] = False,
    only_managers: Annotated[
        Flag, Query(description="Only employees with at least one direct report.")
    ] = False,
    full_text_name: Annotated[str | None, Query(max_length=200, pattern=TEXT_PATTERN)] = None,
    name_starts_with: Annotated[str | None, Query(max_length=200, pattern=TEXT_PATTERN)] = None,
    updated_at_gteq: Annotated[
        Day | None, Query(description="Updated on or after this day (UTC).")
    ] = None,
) -> Page[Employee]:
    """Employees of the credential's company, by id ascending. Ids of other companies in
    ``ids[]`` are dropped, not an error (tenancy). Unknown parameters are ignored."""
    _no_store(response)
    id_filter: set[int] | None = None
    for given in (ids, access_ids):  # Grantly's access id is the employee id
        if given is not None:
            id_filter = set(given) if id_filter is None else id_filter & set(given)
    filters = EmployeeFilter(
        ids=tuple(sorted(id_filter)) if id_filter is not None else None,
        emails=tuple(emails) if emails is not None else None,
        location_ids=tuple(location_ids) if location_ids is not None else None,
        manager_ids=tuple(manager_ids) if manager_ids is not None else None,
        only_active=only_active,
        only_managers=only_managers,
        full_text_name=full_text_name or None,
        name_starts_with=name_starts_with or None,
        updated_at_gteq=(
            int(dt.datetime.combine(updated_at_gteq, dt.time(), dt.UTC).timestamp())
            if updated_at_gteq
            else None
        ),
    )
    size = page_size(limit)
    paging = PageRequest(
        limit=size,
        page=page,
        after_id=decode_cursor(after_id) if after_id and page is None else None,
        before_id=decode_cursor(before_id) if before_id and page is None else None,
    )
    result = await uow.people.page(principal.company_id, filters, paging)
    today = _today(request)
    employees = [view(employee, principal, today) for employee in result.employees]
    return Page[Employee](
        data=employees,
        meta=PageMeta(
            limit=size,
            total=result.total,
            has_next_page=result.has_next_page,
            has_previous_page=result.has_previous_page,
            start_cursor=encode_cursor(employees[0].id) if employees else None,
            end_cursor=encode_cursor(employees[-1].id) if employees else None,
        ),
    )


@router.get(
    "/{employee_id}",
    response_model=Employee,
    summary="Read one employee (scope: read)",
    operation_id="get_employee",
)
async def get_employee(
    version: Version,
    employee_id: EmployeeId,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    uow: UnitOfWork,
) -> Employee:
    """The bare employee (no ``data`` wrapper). Another company's id is 404, as an unknown
    one is: nothing tells it exists."""
    _no_store(response)
    employee = await _employee(uow.people, principal, employee_id)
    return view(employee, principal, _today(request))


async def _employee(people: People, principal: Principal, employee_id: int) -> EmployeeRecord:
    """The employee ``employee_id`` of the principal's company; 404 otherwise (tenancy)."""
    employee = await people.get(principal.company_id, employee_id)
    if employee is None:
        raise not_found()
    return employee


async def _check_manager(
    people: People, company_id: int, manager_id: int, employee_id: int | None
) -> None:
    """A manager is an employee of the same company, and no one manages themselves, directly
    or up the chain."""
    if await people.get(company_id, manager_id) is None:
        raise invalid("manager_id: there is no such employee in your company.")
    if employee_id is not None and await people.manages_indirectly(
        company_id, manager_id, employee_id
    ):
        raise invalid("manager_id: an employee cannot be their own manager, even indirectly.")


@router.put(
    "/{employee_id}",
    response_model=Employee,
    summary="Change an employee: a partial update (scope: write)",
    operation_id="update_employee",
)
async def update_employee(
    version: Version,
    employee_id: EmployeeId,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    uow: UnitOfWork,
    body: Annotated[EmployeeUpdate | None, Body()] = None,
) -> Employee:
    """Only the keys sent change; the id comes from the path (factorialhr sends none, the
    official SDK repeats it as a string)."""
    _no_store(response)
    people = uow.people
    employee = await _employee(people, principal, employee_id)
    changes = body.model_dump(exclude_unset=True) if body is not None else {}
    for key in NOT_NULL:
        if key in changes and changes[key] is None:
            raise invalid(f"{key} cannot be null.")
    for key in ("id", "access_id"):
        given = changes.pop(key, None)
        if given is not None and given != employee_id:
            raise invalid(f"{key} in the body ({given}) is not the id in the path ({employee_id}).")
    if changes.get("manager_id") is not None:
        await _check_manager(people, principal.company_id, changes["manager_id"], employee_id)
    updated = await people.update(employee, changes, services(request).clock.now())
    return view(updated, principal, _today(request))


@router.post(
    "/create_with_contract",
    response_model=Employee,
    responses={
        409: {"model": ErrorBody, "description": "The email is already in use"},
    },
    summary="Create an employee (scope: write); answered 200, as Factorial does",
    operation_id="create_employee_with_contract",
)
async def create_with_contract(
    version: Version,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    uow: UnitOfWork,
    body: EmployeeCreate,
) -> Employee:
    """A new employee of the credential's company. They have no password, so they cannot sign
    in until they set one with an admin's invitation (the People page, or `grantly users
    invite`); contract fields are accepted and ignored."""
    _no_store(response)
    if body.company_id != principal.company_id:
        raise forbidden(
            f"company_id must be {principal.company_id}: this credential acts for that "
            "company only."
        )
    people = uow.people
    if body.manager_id is not None:
        await _check_manager(people, principal.company_id, body.manager_id, None)
    if await people.email_taken(body.email):
        raise conflict("this email is already in use by another person.")
    values = body.model_dump(
        exclude_unset=True, exclude={"company_id", "first_name", "last_name", "email"}
    )
    if "location_id" in values and values["location_id"] is None:
        raise invalid("location_id cannot be null.")
    try:
        created = await people.create(
            principal.company_id,
            email=body.email,
            first_name=body.first_name,
            last_name=body.last_name,
            values=values,
            now=services(request).clock.now(),
        )
    except Conflict as exc:  # the same email, created concurrently
        raise conflict("this email is already in use by another person.") from exc
    return view(created, principal, _today(request))


@router.post(
    "/terminate",
    response_model=Employee,
    summary="Terminate an employee (scope: write)",
    operation_id="terminate_employee",
)
async def terminate(
    version: Version,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    uow: UnitOfWork,
    body: Termination,
) -> Employee:
    """The employee stops being active at once: no sign-in, their sessions end and their user
    tokens answer 401 ``invalid_token`` from the next request on (RFC 6750 §3.1). Company
    tokens they authorized act for the company and keep working."""
    _no_store(response)
    people = uow.people
    employee = await _employee(people, principal, body.id)
    now = services(request).clock.now()
    terminated = await people.terminate(employee, body.terminated_on, body.termination_reason, now)
    if employee.active and not terminated.active:
        await _audit_access_change(request, uow, principal, "user.deactivated", terminated, now)
    return view(terminated, principal, _today(request))


@router.post(
    "/unterminate",
    response_model=Employee,
    summary="Undo a termination (scope: write)",
    operation_id="unterminate_employee",
)
async def unterminate(
    version: Version,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    uow: UnitOfWork,
    body: Untermination,
) -> Employee:
    """The employee is active again. Tokens they held before stay revoked: they authorize
    applications again."""
    _no_store(response)
    people = uow.people
    employee = await _employee(people, principal, body.id)
    now = services(request).clock.now()
    restored = await people.unterminate(employee, now)
    if restored.active and not employee.active:
        await _audit_access_change(request, uow, principal, "user.activated", restored, now)
    return view(restored, principal, _today(request))


async def _audit_access_change(
    request: Request,
    uow: Store,
    principal: Principal,
    event: str,
    person: EmployeeRecord,
    now: int,
) -> None:
    """A termination through the API ends a person's access as deactivating them on the
    dashboard does, and is in the company's audit trail the same way: by which credential."""
    await uow.audit.record(
        event,
        company_id=principal.company_id,
        now=now,
        actor_user_id=principal.user_id,
        ip=request.client.host if request.client else None,
        user_id=person.id,
        email=person.email,
        via="api",
        credential=principal.credential_id,
    )
