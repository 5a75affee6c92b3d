"""Migration 0003 (the employee fields) keeps everything that points at people.

Had it rebuilt the ``users`` table on SQLite (Alembic's batch mode does for some changes),
dropping the old table would have run ON DELETE CASCADE and SET NULL: every sign-in session
deleted, every user token detached from its user. This checks the data survives the upgrade
and the downgrade, on whichever backend the suite runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy.engine import make_url

from grantly.store.migrate import alembic_config
from tests.conftest import ON_POSTGRESQL, _pg_admin, drop_world, make_settings
from tests.conftest import run_sql as _run

ROWS = [
    "INSERT INTO companies (id, name, created_at) VALUES (1, 'Acme', 0)",
    "INSERT INTO users (id, company_id, email, name, password_hash, admin, active, created_at) "
    "VALUES (1, 1, 'ana@acme.example', 'Ana López García', 'argon2-hash', true, true, 0)",
    "INSERT INTO user_sessions (digest, user_id, created_at, expires_at) "
    "VALUES ('session-digest', 1, 0, 9999999999)",
    "INSERT INTO applications (id, company_id, name, client_id, confidential, redirect_uris, "
    "scopes, created_at, updated_at) VALUES (1, 1, 'App', 'cid', true, 'https://a.example', "
    "'read', 0, 0)",
    "INSERT INTO access_tokens (digest, application_id, owner_type, company_id, user_id, scopes, "
    "family_id, created_at) VALUES ('token-digest', 1, 'user', 1, 1, 'read', 1, 0)",
    "INSERT INTO api_keys (company_id, name, digest, hint, created_by, created_at) "
    "VALUES (1, 'Key', 'key-digest', 'gak_abcd', 1, 0)",
]


@pytest.fixture
def database_at_0002(tmp_path: Path) -> Iterator[str]:
    settings = make_settings(tmp_path)
    if ON_POSTGRESQL:
        _pg_admin(f'CREATE DATABASE "{make_url(settings.database_url).database}"')
    try:
        command.upgrade(alembic_config(settings.async_database_url), "0002")
        _run(settings.async_database_url, ROWS)
        yield settings.async_database_url
    finally:
        drop_world(settings)


def test_upgrading_to_0003_keeps_sessions_tokens_and_api_keys_attached_to_people(
    database_at_0002: str,
) -> None:
    command.upgrade(alembic_config(database_at_0002), "head")
    sessions, tokens, keys, users = _run(
        database_at_0002,
        [
            "SELECT user_id FROM user_sessions",
            "SELECT user_id FROM access_tokens",
            "SELECT created_by FROM api_keys",
            "SELECT name, password_hash, location_id, attendable, first_name FROM users",
        ],
    )
    assert sessions == [(1,)] and tokens == [(1,)] and keys == [(1,)]
    assert users == [("Ana López García", "argon2-hash", 1, False, None)]


def test_downgrading_from_0003_keeps_sessions_and_tokens_too(database_at_0002: str) -> None:
    config = alembic_config(database_at_0002)
    command.upgrade(config, "head")
    command.downgrade(config, "0002")
    sessions, tokens = _run(
        database_at_0002,
        ["SELECT user_id FROM user_sessions", "SELECT user_id FROM access_tokens"],
    )
    assert sessions == [(1,)] and tokens == [(1,)]
