"""Employees: the ``users`` rows as the resource API sees them.

Every read and write takes the company id of the credential, and every statement is filtered
by it: another company's employee is never found, so the API answers 404 (tenancy). Lists are
ordered by id, ascending, as Factorial's are, so that offset pages fetched concurrently never
overlap and cursors are plain ids (docs/factorial-api.md §6).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from ..passwords import unusable_password_hash
from . import tables as t
from .credentials import revoke_user_credentials
from .transaction import Transaction
from .users import UserSessions

# Columns the API may change, beyond the names (which also rewrite ``users.name``).
EDITABLE = (
    "preferred_name",
    "location_id",
    "manager_id",
    "attendable",
    "birthday_on",
    "phone_number",
    "personal_email",
    "bank_number",
    "bank_number_format",
    "swift_bic",
    "social_security_number",
    "salary_cents",
)


@dataclass(frozen=True, slots=True)
class Employee:
    """A person of a company, with every field Grantly keeps about them."""

    id: int
    company_id: int
    email: str
    full_name: str
    first_name: str
    last_name: str
    preferred_name: str | None
    admin: bool
    active: bool
    location_id: int
    manager_id: int | None
    attendable: bool
    terminated_on: dt.date | None
    created_at: int
    updated_at: int
    # Sensitive: the API shows them to the employee, admins, company tokens and API keys.
    birthday_on: dt.date | None
    phone_number: str | None
    personal_email: str | None
    bank_number: str | None
    bank_number_format: str | None
    swift_bic: str | None
    social_security_number: str | None
    salary_cents: int | None
    termination_reason: str | None


def split_name(name: str) -> tuple[str, str]:
    """First and last name of a person known only by a full name (people created before the
    directory fields existed, or by ``Accounts.create_user``): the first word, then the rest,
    as Spanish double surnames read ("Ana López García" -> "Ana", "López García")."""
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def full_name(first_name: str, last_name: str) -> str:
    return f"{first_name} {last_name}".strip()


def _employee(row: Any) -> Employee:
    derived_first, derived_last = split_name(row.name)
    first = row.first_name if row.first_name is not None else derived_first
    last = row.last_name if row.last_name is not None else derived_last
    return Employee(
        id=row.id,
        company_id=row.company_id,
        email=row.email,
        full_name=row.name,
        first_name=first,
        last_name=last,
        preferred_name=row.preferred_name,
        admin=bool(row.admin),
        active=bool(row.active),
        location_id=row.location_id,
        manager_id=row.manager_id,
        attendable=bool(row.attendable),
        terminated_on=row.terminated_on,
        created_at=row.created_at,
        updated_at=row.updated_at if row.updated_at is not None else row.created_at,
        birthday_on=row.birthday_on,
        phone_number=row.phone_number,
        personal_email=row.personal_email,
        bank_number=row.bank_number,
        bank_number_format=row.bank_number_format,
        swift_bic=row.swift_bic,
        social_security_number=row.social_security_number,
        salary_cents=row.salary_cents,
        termination_reason=row.termination_reason,
    )


@dataclass(frozen=True, slots=True)
class EmployeeFilter:
    """Factorial's list filters (docs/factorial-api.md §4.2). None means "no filter"; an
    empty tuple matches no one."""

    ids: tuple[int, ...] | None = None
    emails: tuple[str, ...] | None = None
    location_ids: tuple[int, ...] | None = None
    manager_ids: tuple[int, ...] | None = None
    only_active: bool = False
    only_managers: bool = False
    full_text_name: str | None = None
    name_starts_with: str | None = None
    updated_at_gteq: int | None = None  # Unix seconds


@dataclass(frozen=True, slots=True)
class EmployeePage:
    employees: list[Employee]
    total: int
    has_next_page: bool
    has_previous_page: bool


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Offset pages (``page``, 1-based: factorialhr) or cursors (``after_id`` / ``before_id``:
    factorial-api-client); ``page`` wins when both are given."""

    limit: int
    page: int | None = None
    after_id: int | None = None
    before_id: int | None = None


class People:
    """The employees of a company."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    def _where(self, company_id: int, filters: EmployeeFilter) -> ColumnElement[bool]:
        u = t.users
        conditions: list[ColumnElement[bool]] = [u.c.company_id == company_id]
        if filters.ids is not None:
            conditions.append(u.c.id.in_(filters.ids))
        if filters.emails is not None:
            conditions.append(u.c.email.in_([e.strip().lower() for e in filters.emails]))
        if filters.location_ids is not None:
            conditions.append(u.c.location_id.in_(filters.location_ids))
        if filters.manager_ids is not None:
            conditions.append(u.c.manager_id.in_(filters.manager_ids))
        if filters.only_active:
            conditions.append(u.c.active.is_(True))
        if filters.only_managers:
            report = t.users.alias("report")
            conditions.append(
                exists().where(report.c.manager_id == u.c.id, report.c.company_id == company_id)
            )
        if filters.full_text_name:
            text = filters.full_text_name.strip()
            conditions.append(
                or_(
                    u.c.name.icontains(text, autoescape=True),
                    u.c.preferred_name.icontains(text, autoescape=True),
                )
            )
        if filters.name_starts_with:
            text = filters.name_starts_with.strip()
            conditions.append(
                or_(
                    u.c.name.istartswith(text, autoescape=True),
                    u.c.last_name.istartswith(text, autoescape=True),
                )
            )
        if filters.updated_at_gteq is not None:
            conditions.append(
                func.coalesce(u.c.updated_at, u.c.created_at) >= filters.updated_at_gteq
            )
        return and_(*conditions)

    async def _exists(self, condition: ColumnElement[bool]) -> bool:
        found = await self.tx.scalar(select(t.users.c.id).where(condition).limit(1))
        return found is not None

    async def page(
        self, company_id: int, filters: EmployeeFilter, request: PageRequest
    ) -> EmployeePage:
        u = t.users
        where = self._where(company_id, filters)
        total = int(await self.tx.scalar(select(func.count()).select_from(u).where(where)) or 0)
        limit = request.limit
        if request.page is not None:
            rows = await self.tx.rows(
                select(u)
                .where(where)
                .order_by(u.c.id)
                .limit(limit)
                .offset((request.page - 1) * limit)
            )
            employees = [_employee(row) for row in rows]
            return EmployeePage(
                employees,
                total,
                has_next_page=request.page * limit < total,
                has_previous_page=request.page > 1 and total > 0,
            )
        if request.before_id is not None and request.after_id is None:
            rows = await self.tx.rows(
                select(u)
                .where(where, u.c.id < request.before_id)
                .order_by(u.c.id.desc())
                .limit(limit + 1)
            )
            found = [_employee(row) for row in rows]
            employees = list(reversed(found[:limit]))
            return EmployeePage(
                employees,
                total,
                has_next_page=await self._exists(and_(where, u.c.id >= request.before_id)),
                has_previous_page=len(found) > limit,
            )
        query = select(u).where(where)
        if request.after_id is not None:
            query = query.where(u.c.id > request.after_id)
        if request.before_id is not None:
            query = query.where(u.c.id < request.before_id)
        found = [
            _employee(row) for row in await self.tx.rows(query.order_by(u.c.id).limit(limit + 1))
        ]
        has_previous = request.after_id is not None and await self._exists(
            and_(where, u.c.id <= request.after_id)
        )
        return EmployeePage(
            found[:limit], total, has_next_page=len(found) > limit, has_previous_page=has_previous
        )

    async def get(self, company_id: int, employee_id: int) -> Employee | None:
        row = await self.tx.first(
            select(t.users).where(t.users.c.id == employee_id, t.users.c.company_id == company_id)
        )
        return _employee(row) if row else None

    async def email_taken(self, email: str) -> bool:
        found = await self.tx.scalar(
            select(t.users.c.id).where(t.users.c.email == email.strip().lower())
        )
        return found is not None

    async def manages_indirectly(self, company_id: int, manager_id: int, employee_id: int) -> bool:
        """Would making ``manager_id`` the manager of ``employee_id`` close a loop? True when
        ``employee_id`` is ``manager_id`` or one of its managers, up the chain."""
        seen: set[int] = set()
        current: int | None = manager_id
        while current is not None and current not in seen:
            if current == employee_id:
                return True
            seen.add(current)
            current = await self.tx.scalar(
                select(t.users.c.manager_id).where(
                    t.users.c.id == current, t.users.c.company_id == company_id
                )
            )
        return False

    async def create(
        self,
        company_id: int,
        *,
        email: str,
        first_name: str,
        last_name: str,
        values: Mapping[str, object],
        now: int,
    ) -> Employee:
        """A new employee, created through the API: no password (``password_set_at`` NULL),
        so no sign-in until they set one with an admin's invitation."""
        row = await self.tx.first(
            insert(t.users)
            .values(
                company_id=company_id,
                email=email.strip().lower(),
                name=full_name(first_name, last_name),
                first_name=first_name,
                last_name=last_name,
                password_hash=unusable_password_hash(),
                admin=False,
                active=True,
                created_at=now,
                updated_at=now,
                **_editable(values),
            )
            .returning(t.users)
        )
        return _employee(row)

    async def update(self, employee: Employee, values: Mapping[str, object], now: int) -> Employee:
        """A partial update: only the given fields change; names keep ``users.name`` equal to
        the full name."""
        changes: dict[str, object] = dict(_editable(values))
        if "first_name" in values or "last_name" in values:
            first = str(values.get("first_name", employee.first_name))
            last = str(values.get("last_name", employee.last_name))
            changes.update(first_name=first, last_name=last, name=full_name(first, last))
        changes["updated_at"] = now
        return await self._set(employee, changes)

    async def terminate(
        self, employee: Employee, terminated_on: dt.date, reason: str | None, now: int
    ) -> Employee:
        """A terminated employee loses access at once: no sign-in, their sessions end, and
        their user tokens (and unused codes) are revoked for good, so that a later
        unterminate does not bring old credentials back. Company tokens they authorized act
        for the company and keep working (Factorial's rule)."""
        await UserSessions(self.tx).end_all(employee.id)
        await revoke_user_credentials(self.tx, employee.id, now)
        return await self._set(
            employee,
            {
                "active": False,
                "terminated_on": terminated_on,
                "termination_reason": reason,
                "updated_at": now,
            },
        )

    async def unterminate(self, employee: Employee, now: int) -> Employee:
        """Undo a termination. Credentials issued before it stay revoked (also those of a user
        deactivated with ``grantly users deactivate``): the employee authorizes again."""
        await revoke_user_credentials(self.tx, employee.id, now)
        return await self._set(
            employee,
            {"active": True, "terminated_on": None, "termination_reason": None, "updated_at": now},
        )

    async def _set(self, employee: Employee, changes: Mapping[str, object]) -> Employee:
        row = await self.tx.first(
            update(t.users)
            .where(t.users.c.id == employee.id, t.users.c.company_id == employee.company_id)
            .values(**changes)
            .returning(t.users)
        )
        return _employee(row)


def _editable(values: Mapping[str, object]) -> dict[str, object]:
    return {name: values[name] for name in EDITABLE if name in values}
