"""The hot statements at the driver level (``store/prepared.py``): a driver error comes out as
SQLAlchemy's own exception class (so the app answers a lost database with 503, a broken
constraint as SQLAlchemy would have), and the unit of work is rolled back as usual."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from grantly.store import tables as t
from grantly.store.prepared import Prepared
from grantly.store.repositories import Accounts
from tests.conftest import ON_POSTGRESQL, World

_INSERT_COMPANY = Prepared(insert(t.companies))


def test_a_constraint_broken_at_the_driver_level_is_sqlalchemys_integrity_error(
    world: World,
) -> None:
    async def duplicate(connection) -> None:  # type: ignore[no-untyped-def]
        await Accounts(connection).create_company("Written first", 0)
        row = {"id": world.company_a, "name": "again", "created_at": 0}
        await _INSERT_COMPANY.rowcount(connection, row)

    with pytest.raises(IntegrityError):
        world.run(duplicate)

    async def written_first(connection):  # type: ignore[no-untyped-def]
        return await Accounts(connection).company_by_name("Written first")

    assert world.run(written_first) is None  # the unit was rolled back as a whole


def test_a_statement_the_database_refuses_is_sqlalchemys_error_with_its_sql(
    world: World,
) -> None:
    async def broken(connection) -> None:  # type: ignore[no-untyped-def]
        statement = Prepared(
            select(t.companies.c.id).where(t.companies.c.name == bindparam("name"))
        )
        # Compiled for this dialect, then pointed at a table that does not exist.
        compiled = statement._for(connection.dialect, {"name": "x"})
        compiled.sql = compiled.sql.replace("companies", "no_such_table")
        await statement.first(connection, {"name": "x"})

    expected = ProgrammingError if ON_POSTGRESQL else OperationalError
    with pytest.raises(expected) as raised:
        world.run(broken)
    assert "no_such_table" in str(raised.value)
