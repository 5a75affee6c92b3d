"""No id of a company, person, application or API key is ever given twice.

SQLite's plain INTEGER PRIMARY KEY hands the highest id out again once its row is deleted, so
audit rows and old links would name whatever got the id next. AUTOINCREMENT tables (and
PostgreSQL's sequences) never do. Migration 0007 rebuilds the SQLite tables to get it, and
the rebuild must keep everything that points at them: dropping a table with foreign keys on
would run every ON DELETE CASCADE and SET NULL of the tables that reference it.
"""

from __future__ import annotations

import pytest
from alembic import command

from grantly.store.migrate import alembic_config
from tests.conftest import ON_POSTGRESQL
from tests.conftest import run_sql as _run

NEW_ROW = {
    "companies": "INSERT INTO companies (name, created_at) VALUES ('C', 0)",
    "users": "INSERT INTO users (company_id, email, name, password_hash, admin, active, "
    "created_at) VALUES (1, 'u{n}@acme.example', 'U', 'hash', false, true, 0)",
    "applications": "INSERT INTO applications (company_id, name, client_id, confidential, "
    "redirect_uris, scopes, created_at, updated_at) "
    "VALUES (1, 'App', 'cid{n}', true, 'https://a.example', 'read', 0, 0)",
    "api_keys": "INSERT INTO api_keys (company_id, name, digest, hint, created_at) "
    "VALUES (1, 'Key', 'key-digest-{n}', 'gak_abcd', 0)",
}

# Rows made before 0007, pointing at every table it rebuilds. Application 2 is deleted before
# the upgrade; only the audit trail still names it.
ROWS = [
    "INSERT INTO companies (id, name, created_at) VALUES (1, 'Acme', 0)",
    "INSERT INTO companies (id, name, created_at) VALUES (2, 'Other', 0)",
    "INSERT INTO users (id, company_id, email, name, password_hash, admin, active, created_at, "
    "first_name) VALUES (1, 1, 'ana@acme.example', 'Ana López', 'argon2-hash', true, true, 0, "
    "'Ana')",
    "INSERT INTO users (id, company_id, email, name, password_hash, admin, active, created_at, "
    "manager_id) VALUES (2, 1, 'bo@acme.example', 'Bo', 'hash', false, true, 0, 1)",
    "INSERT INTO user_sessions (digest, user_id, created_at, expires_at) "
    "VALUES ('session-digest', 1, 0, 9999999999)",
    "INSERT INTO applications (id, company_id, name, client_id, confidential, redirect_uris, "
    "scopes, created_at, updated_at, consent, access_token_lifetime) VALUES (1, 1, 'App', "
    "'cid', true, 'https://a.example', 'read', 0, 0, 'remember', 600)",
    "INSERT INTO applications (id, company_id, name, client_id, confidential, redirect_uris, "
    "scopes, created_at, updated_at) VALUES (2, 1, 'Gone', 'cid-gone', true, "
    "'https://g.example', 'read', 0, 0)",
    "INSERT INTO authorization_codes (digest, application_id, owner_type, company_id, user_id, "
    "redirect_uri, redirect_uri_in_request, scopes, created_at, expires_at) "
    "VALUES ('code-digest', 1, 'user', 1, 1, 'https://a.example', true, 'read', 0, 9999999999)",
    "INSERT INTO access_tokens (digest, application_id, owner_type, company_id, user_id, scopes, "
    "family_id, created_at) VALUES ('token-digest', 1, 'user', 1, 1, 'read', 1, 0)",
    "INSERT INTO refresh_tokens (digest, application_id, owner_type, company_id, user_id, "
    "scopes, family_id, created_at, expires_at) "
    "VALUES ('refresh-digest', 1, 'company', 1, 1, 'read', 1, 0, 9999999999)",
    "INSERT INTO consents (application_id, owner_type, company_id, user_id, scopes, created_at, "
    "updated_at) VALUES (1, 'user', 1, 1, 'read', 0, 0)",
    "INSERT INTO api_keys (id, company_id, name, digest, hint, created_by, created_at) "
    "VALUES (1, 1, 'Key', 'key-digest', 'gak_abcd', 1, 0)",
    "INSERT INTO audit_events (company_id, event, actor_user_id, application_id, detail, "
    "created_at) VALUES (1, 'application.created', 1, 2, '{\"name\": \"Gone\"}', 0)",
    "INSERT INTO audit_events (company_id, event, actor_user_id, application_id, detail, "
    "created_at) VALUES (1, 'token.issued', 2, 1, '{}', 1)",
]
# Rows given their ids by hand leave PostgreSQL's sequences behind; Grantly never does that.
CATCH_UP = [
    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
    for table in NEW_ROW
]

# Every row of every table that points at (or is) a rebuilt table.
TABLES = [
    "companies",
    "users",
    "user_sessions",
    "applications",
    "authorization_codes",
    "access_tokens",
    "refresh_tokens",
    "consents",
    "api_keys",
    "audit_events",
]


def _make_rows(url: str) -> None:
    _run(
        url, ROWS + (CATCH_UP if ON_POSTGRESQL else []) + ["DELETE FROM applications WHERE id = 2"]
    )


def _everything(url: str) -> list[list[tuple[object, ...]]]:
    return _run(url, [f"SELECT * FROM {table} ORDER BY id" for table in TABLES])


def _insert(url: str, table: str, n: int) -> int:
    [[(new_id,)]] = _run(url, [NEW_ROW[table].format(n=n) + " RETURNING id"])
    assert isinstance(new_id, int)
    return new_id


@pytest.mark.parametrize("table", ["companies", "users", "applications", "api_keys"])
def test_the_id_of_the_newest_row_deleted_is_not_given_again(
    empty_database: str, table: str
) -> None:
    command.upgrade(alembic_config(empty_database), "head")
    _run(empty_database, [NEW_ROW["companies"]])  # company 1, which the other rows belong to
    first, newest = _insert(empty_database, table, 1), _insert(empty_database, table, 2)
    assert newest > first
    _run(empty_database, [f"DELETE FROM {table} WHERE id = {newest}"])
    assert _insert(empty_database, table, 3) > newest


def test_upgrading_to_0007_keeps_every_row_and_every_reference(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "0006")
    _make_rows(empty_database)
    before = _everything(empty_database)
    assert all(before), "every table has rows to lose"

    command.upgrade(config, "0007")
    assert _everything(empty_database) == before
    # Application 2 was deleted before the upgrade; the audit trail still names it, so its id
    # is not handed out either.
    assert _insert(empty_database, "applications", 3) == 3
    assert [_insert(empty_database, t, 3) for t in ("companies", "users", "api_keys")] == [3, 3, 2]


def test_downgrading_from_0007_keeps_every_row_too(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "0006")
    _make_rows(empty_database)
    before = _everything(empty_database)
    command.upgrade(config, "0007")
    command.downgrade(config, "0006")
    assert _everything(empty_database) == before
    command.upgrade(config, "0007")
    assert _everything(empty_database) == before


@pytest.mark.skipif(ON_POSTGRESQL, reason="PostgreSQL checks references on every write")
def test_a_sqlite_migration_that_leaves_a_broken_reference_changes_nothing(
    empty_database: str,
) -> None:
    # Foreign keys are off while SQLite migrates; the references are checked before COMMIT.
    config = alembic_config(empty_database)
    command.upgrade(config, "0006")
    _make_rows(empty_database)
    _run(empty_database, ["UPDATE access_tokens SET application_id = 99"])  # foreign keys off here
    before = _everything(empty_database)
    with pytest.raises(RuntimeError, match="pointing at nothing"):
        command.upgrade(config, "head")
    assert _run(empty_database, ["SELECT version_num FROM alembic_version"]) == [[("0006",)]]
    assert _everything(empty_database) == before
