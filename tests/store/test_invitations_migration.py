"""Revision 0008: the invitations table, and who has a password (``users.password_set_at``)."""

from __future__ import annotations

from alembic import command

from grantly.store.migrate import alembic_config
from tests.conftest import ON_POSTGRESQL
from tests.conftest import run_sql as _run

_USER = (
    "INSERT INTO users (id, company_id, email, name, password_hash, admin, active, created_at, "
    "first_name) VALUES ({id}, 1, '{email}', 'N', 'hash', {admin}, true, {created}, {first})"
)
# Rows made before 0008: who signed up how, and whether they ever signed in.
PEOPLE = [
    "INSERT INTO companies (id, name, created_at) VALUES (1, 'Acme', 0)",
    # `grantly users create` (and the demo, and sign-up by an admin): names only in `name`.
    _USER.format(id=1, email="cli@acme.example", admin="false", created=10, first="NULL"),
    # An admin: every admin was made with a password.
    _USER.format(id=2, email="admin@acme.example", admin="true", created=20, first="'Ana'"),
    # Made through the API, never signed in: no password anyone knows.
    _USER.format(id=3, email="api@acme.example", admin="false", created=30, first="'Bo'"),
    # Made through the API, then signed in: someone gave them a password.
    _USER.format(id=4, email="api2@acme.example", admin="false", created=40, first="'Cy'"),
    "INSERT INTO user_sessions (digest, user_id, created_at, expires_at) VALUES ('d', 4, 0, 1)",
]
CATCH_UP = [
    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
    for table in ("companies", "users")
]


def _upgrade_with_people(url: str) -> None:
    config = alembic_config(url)
    command.upgrade(config, "0007")
    _run(url, PEOPLE + (CATCH_UP if ON_POSTGRESQL else []))
    command.upgrade(config, "head")


def test_people_made_through_the_api_who_never_signed_in_are_taken_to_have_no_password(
    empty_database: str,
) -> None:
    _upgrade_with_people(empty_database)
    [rows] = _run(empty_database, ["SELECT id, password_set_at FROM users ORDER BY id"])
    assert rows == [(1, 10), (2, 20), (3, None), (4, 40)]


def test_an_invitation_id_is_never_given_again(empty_database: str) -> None:
    _upgrade_with_people(empty_database)
    insert = (
        "INSERT INTO invitations (user_id, digest, created_at, expires_at) "
        "VALUES (3, '{digest}', 0, 1) RETURNING id"
    )
    [[(first,)]] = _run(empty_database, [insert.format(digest="a")])
    [[(newest,)]] = _run(empty_database, [insert.format(digest="b")])
    _run(empty_database, [f"DELETE FROM invitations WHERE id = {newest}"])
    [[(again,)]] = _run(empty_database, [insert.format(digest="c")])
    assert first < newest < again


def test_downgrading_keeps_the_people_and_the_highest_id_given(empty_database: str) -> None:
    _upgrade_with_people(empty_database)
    columns = "id, company_id, email, name, password_hash, admin, active, created_at, first_name"
    _run(empty_database, ["DELETE FROM user_sessions", "DELETE FROM users WHERE id = 4"])
    [before] = _run(empty_database, [f"SELECT {columns} FROM users ORDER BY id"])
    command.downgrade(alembic_config(empty_database), "0007")
    [after] = _run(empty_database, [f"SELECT {columns} FROM users ORDER BY id"])
    assert after == before
    [[(new_id,)]] = _run(
        empty_database,
        [
            "INSERT INTO users (company_id, email, name, password_hash, admin, active, "
            "created_at) VALUES (1, 'new@acme.example', 'N', 'hash', false, true, 0) RETURNING id"
        ],
    )
    assert new_id == 5  # not 4, the id of the person deleted before the downgrade
    command.upgrade(alembic_config(empty_database), "head")
