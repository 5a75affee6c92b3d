"""`grantly tokens prune` removes what can never be valid again, and nothing else."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from grantly import admin
from grantly.app import create_app
from grantly.cli import app as cli
from grantly.oauth.clock import FrozenClock
from tests.conftest import World, count_rows, exchange, obtain_code


def _count(world: World, table: str) -> int:
    return count_rows(world.settings, table)


def _tokens_at(world: World, when: int) -> dict:
    with TestClient(
        create_app(world.settings, clock=FrozenClock(when)),
        follow_redirects=False,
        base_url="http://127.0.0.1:8000",
    ) as http:
        return exchange(http, world.app, obtain_code(http, world)).json()


def test_prune_removes_old_expired_rows_and_keeps_live_ones(world: World) -> None:
    now = int(time.time())
    _tokens_at(world, now - 40 * 86400)  # expired 40 days ago (refresh: 33 days ago)
    live = _tokens_at(world, now)
    assert _count(world, "access_tokens") == 2
    env = {
        "GRANTLY_DATABASE_URL": world.settings.database_url,
        "GRANTLY_DATA_DIR": str(world.settings.data_dir),
    }
    result = CliRunner().invoke(
        cli, ["tokens", "prune", "--retention-days", "30", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["removed"]["access_tokens"] == 1
    assert summary["removed"]["refresh_tokens"] == 1
    assert summary["removed"]["authorization_codes"] == 1
    assert summary["total"] >= 3
    assert _count(world, "access_tokens") == 1
    with TestClient(create_app(world.settings)) as http:
        me = http.get("/api/v1/me", headers={"Authorization": f"Bearer {live['access_token']}"})
    assert me.status_code == 200


def test_prune_prints_a_human_summary(world: World) -> None:
    env = {
        "GRANTLY_DATABASE_URL": world.settings.database_url,
        "GRANTLY_DATA_DIR": str(world.settings.data_dir),
    }
    result = CliRunner().invoke(cli, ["tokens", "prune"], env=env)
    assert result.exit_code == 0
    assert (
        "removed 0 rows: those that ended more than 30 days ago, audit events older than "
        "365 days:" in result.stdout
    )
    assert "  audit_events: 0" in result.stdout


def test_prune_keeps_an_old_code_whose_grant_is_still_refreshed(world: World) -> None:
    """A used code is its grant's anchor, which every change to the grant's tokens locks
    first: a grant refreshed for longer than the retention period keeps its code."""
    now = int(time.time())
    refresh_token = _tokens_at(world, now - 40 * 86400)["refresh_token"]
    for days_ago in (36, 31):  # each within the week the previous refresh token lives
        with TestClient(
            create_app(world.settings, clock=FrozenClock(now - days_ago * 86400)),
            base_url="http://127.0.0.1:8000",
        ) as http:
            refreshed = http.post(
                "/oauth/token",
                auth=(world.app.client_id, world.app.client_secret or ""),
                data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            )
        assert refreshed.status_code == 200, refreshed.text
        refresh_token = refreshed.json()["refresh_token"]
    env = {
        "GRANTLY_DATABASE_URL": world.settings.database_url,
        "GRANTLY_DATA_DIR": str(world.settings.data_dir),
    }
    result = CliRunner().invoke(
        cli, ["tokens", "prune", "--retention-days", "30", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["removed"]["authorization_codes"] == 0
    assert _count(world, "authorization_codes") == 1


def test_prune_removes_old_used_replaced_and_expired_invitations(world: World) -> None:
    now, day = int(time.time()), 86400

    async def work(uow: Any) -> None:
        employee = await uow.accounts.user(world.employee.id)
        await admin.invite(uow, employee, None, now - 50 * day)  # replaced 45 days ago
        await admin.invite(uow, employee, None, now - 45 * day)  # expired 38 days ago
        await admin.invite(uow, employee, None, now)  # works
        person = await uow.accounts.user(world.admin.id)
        used = await admin.invite(uow, person, None, now - 35 * day)
        await uow.invitations.redeem(used.id, now - 31 * day)  # used 31 days ago

    world.run(work)
    assert _count(world, "invitations") == 4
    env = {
        "GRANTLY_DATABASE_URL": world.settings.database_url,
        "GRANTLY_DATA_DIR": str(world.settings.data_dir),
    }
    result = CliRunner().invoke(cli, ["tokens", "prune", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["removed"]["invitations"] == 3
    assert _count(world, "invitations") == 1


def _audit_events_at(world: World, *days_ago: int) -> None:
    now = int(time.time())

    async def work(uow):
        for days in days_ago:
            await uow.audit.record(
                "token.issued", company_id=world.company_a, now=now - days * 86400, scope="read"
            )

    world.run(work)


def _prune(world: World, *args: str, **env: str) -> dict:
    result = CliRunner().invoke(
        cli,
        ["tokens", "prune", *args, "--json"],
        env={
            "GRANTLY_DATABASE_URL": world.settings.database_url,
            "GRANTLY_DATA_DIR": str(world.settings.data_dir),
            **env,
        },
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_prune_removes_audit_events_older_than_a_year_by_default(world: World) -> None:
    _audit_events_at(world, 400, 366, 364, 30, 0)
    summary = _prune(world)
    assert summary["removed"]["audit_events"] == 2
    assert summary["audit_retention_days"] == 365
    assert _count(world, "audit_events") == 3


def test_the_audit_retention_is_a_setting_of_its_own(world: World) -> None:
    """GRANTLY_AUDIT_RETENTION_DAYS, not --retention-days (which is the tokens'), and in
    batches like the rest."""
    _audit_events_at(world, 400, 40, 12, 9, 8, 1)
    summary = _prune(
        world, "--retention-days", "5", "--batch-size", "2", GRANTLY_AUDIT_RETENTION_DAYS="10"
    )
    assert summary["removed"]["audit_events"] == 3
    assert summary["audit_retention_days"] == 10
    assert _count(world, "audit_events") == 3


def test_an_audit_retention_under_a_day_is_refused(world: World) -> None:
    result = CliRunner().invoke(
        cli,
        ["tokens", "prune"],
        env={
            "GRANTLY_DATABASE_URL": world.settings.database_url,
            "GRANTLY_AUDIT_RETENTION_DAYS": "0",
        },
    )
    assert result.exit_code == 1
    assert "audit_retention_days" in result.output
    assert "greater than or equal to 1" in result.output
