"""Migration 0011 (agent applications) rebuilds ``applications`` on SQLite to make
``company_id`` nullable: every row and every reference stays, existing applications come
from the dashboard, and no application id is handed out twice."""

from __future__ import annotations

from alembic import command

from grantly.store.migrate import alembic_config
from tests.conftest import run_sql as _run
from tests.store.test_ids_never_reused import TABLES, _insert, _make_rows

# The columns 0010 had, in its order: what must survive the rebuild unchanged.
OLD_COLUMNS = (
    "id, company_id, name, client_id, secret_digest, confidential, redirect_uris, scopes, "
    "created_at, updated_at, consent, access_token_lifetime"
)


# The tables 0011 adds a column to, with the columns they had before.
OLD = {"applications": OLD_COLUMNS, "companies": "id, name, created_at"}


def _everything(url: str) -> list[list[tuple[object, ...]]]:
    return _run(url, [f"SELECT {OLD.get(table, '*')} FROM {table} ORDER BY id" for table in TABLES])


def test_upgrading_to_0011_keeps_every_row_and_the_highest_id(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "0010")
    _make_rows(empty_database)
    before = _everything(empty_database)

    command.upgrade(config, "0011")
    assert _everything(empty_database) == before
    assert _run(empty_database, ["SELECT origin, company_id FROM applications"]) == [
        [("dashboard", 1)]
    ]
    assert _run(empty_database, ["SELECT agent_applications FROM companies ORDER BY id"]) == [
        [("allow",), ("allow",)]
    ]
    # Application 2 was deleted before; its id is still not given again.
    assert _insert(empty_database, "applications", 3) == 3


def test_an_agent_application_has_no_company_and_a_url_client_id(empty_database: str) -> None:
    command.upgrade(alembic_config(empty_database), "head")
    url = "https://agent.example/" + "m" * 1500 + ".json"
    _run(
        empty_database,
        [
            "INSERT INTO applications (name, client_id, confidential, redirect_uris, scopes, "
            "created_at, updated_at, origin) VALUES ('Agent', :url, false, "
            "'http://127.0.0.1/cb', 'read', 0, 0, 'metadata_document')".replace(":url", f"'{url}'")
        ],
    )
    assert _run(empty_database, ["SELECT company_id, client_id FROM applications"]) == [
        [(None, url)]
    ]


def test_downgrading_from_0011_drops_only_agent_applications(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "0010")
    _make_rows(empty_database)
    before = _everything(empty_database)
    command.upgrade(config, "0011")
    _run(
        empty_database,
        [
            "INSERT INTO applications (name, client_id, confidential, redirect_uris, scopes, "
            "created_at, updated_at, origin) VALUES ('Agent', 'dcr-1', false, "
            "'http://127.0.0.1/cb', 'read', 0, 0, 'registration')"
        ],
    )
    command.downgrade(config, "0010")
    assert _everything(empty_database) == before
