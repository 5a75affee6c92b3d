"""The `grantly` command line: human output, --json, and clear failures on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grantly.cli import app


@pytest.fixture
def grantly(tmp_path: Path):
    runner = CliRunner()
    env = {
        "GRANTLY_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "GRANTLY_DATA_DIR": str(tmp_path / "data"),
    }

    def run(*args: str, code: int = 0, **extra_env: str):
        result = runner.invoke(app, list(args), env={**env, **extra_env})
        assert result.exit_code == code, (result.exit_code, result.output)
        return result

    return run


def _json(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_db_upgrade_is_idempotent(grantly) -> None:
    assert "up to date" in grantly("db", "upgrade").stdout
    assert _json(grantly("db", "upgrade", "--json")) == {"status": "up to date"}


def test_companies_users_and_apps_are_created_with_json_output(grantly) -> None:
    company = _json(grantly("companies", "create", "--name", "Acme", "--json"))
    assert company["name"] == "Acme"
    user = _json(
        grantly(
            "users",
            "create",
            "--company",
            str(company["id"]),
            "--email",
            "Ada@Acme.example",
            "--password",
            "long enough",
            "--admin",
            "--json",
        )
    )
    assert user == {
        "id": user["id"],
        "email": "ada@acme.example",
        "company_id": company["id"],
        "admin": True,
    }
    application = _json(
        grantly(
            "apps",
            "create",
            "--company",
            str(company["id"]),
            "--name",
            "Sync",
            "--redirect-uri",
            "https://sync.example/cb",
            "--redirect-uri",
            "http://127.0.0.1:9000/cb",
            "--scope",
            "read",
            "--json",
        )
    )
    assert set(application) >= {
        "id",
        "client_id",
        "client_secret",
        "redirect_uris",
        "confidential",
        "scopes",
    }
    assert application["client_secret"].startswith("gcs_")
    assert application["redirect_uris"] == ["https://sync.example/cb", "http://127.0.0.1:9000/cb"]
    assert application["confidential"] is True
    assert application["scopes"] == ["read"]


def test_a_public_app_has_no_secret(grantly) -> None:
    company = _json(grantly("companies", "create", "--name", "Acme", "--json"))
    application = _json(
        grantly(
            "apps",
            "create",
            "--company",
            str(company["id"]),
            "--name",
            "SPA",
            "--redirect-uri",
            "https://spa.example/cb",
            "--public",
            "--json",
        )
    )
    assert application["client_secret"] is None
    assert application["confidential"] is False
    assert application["scopes"] == ["read", "write"]


def test_human_output_is_the_default(grantly) -> None:
    out = grantly("companies", "create", "--name", "Acme").stdout
    assert out.startswith("created company 1: Acme")


def test_a_duplicate_email_fails_with_a_clear_message(grantly) -> None:
    grantly("companies", "create", "--name", "Acme")
    grantly(
        "users", "create", "--company", "1", "--email", "a@acme.example", "--password", "12345678"
    )
    result = grantly(
        "users",
        "create",
        "--company",
        "1",
        "--email",
        "a@acme.example",
        "--password",
        "12345678",
        "--json",
        code=1,
    )
    assert _json(result) == {"error": "a user with email a@acme.example already exists."}


def test_bad_input_exits_non_zero_and_says_what_to_change(grantly) -> None:
    grantly("companies", "create", "--name", "Acme")
    assert (
        "at least 8"
        in grantly(
            "users", "create", "--company", "1", "--email", "a@b.c", "--password", "short", code=2
        ).output
    )
    assert (
        "no company 9"
        in grantly(
            "users",
            "create",
            "--company",
            "9",
            "--email",
            "a@b.c",
            "--password",
            "12345678",
            code=1,
        ).output
    )
    bad_uri = grantly(
        "apps",
        "create",
        "--company",
        "1",
        "--name",
        "X",
        "--redirect-uri",
        "http://example.com/cb",
        code=2,
    ).output
    assert "only https is allowed" in bad_uri
    bad_scope = grantly(
        "apps",
        "create",
        "--company",
        "1",
        "--name",
        "X",
        "--redirect-uri",
        "https://x.example/cb",
        "--scope",
        "admin",
        code=2,
    ).output
    assert "unknown scope" in bad_scope
    assert (
        "no company 5"
        in grantly(
            "apps",
            "create",
            "--company",
            "5",
            "--name",
            "X",
            "--redirect-uri",
            "https://x.example/cb",
            code=1,
        ).output
    )


def test_deactivating_a_user(grantly) -> None:
    grantly("companies", "create", "--name", "Acme")
    user = _json(
        grantly(
            "users",
            "create",
            "--company",
            "1",
            "--email",
            "e@acme.example",
            "--password",
            "12345678",
            "--json",
        )
    )
    result = _json(grantly("users", "deactivate", "--id", str(user["id"]), "--json"))
    assert result["active"] is False
    assert "no user 99" in grantly("users", "deactivate", "--id", "99", code=1).output


def test_demo_refuses_to_run_outside_development(grantly) -> None:
    result = grantly("demo", "--no-serve", code=2, GRANTLY_ENV="production")
    assert "GRANTLY_ENV=development" in result.output


def test_demo_seeds_once_and_reuses_what_exists(grantly) -> None:
    first = _json(grantly("demo", "--no-serve", "--json", GRANTLY_ENV="development"))
    second = _json(grantly("demo", "--no-serve", "--json", GRANTLY_ENV="development"))
    assert first["company"] == second["company"]
    assert first["application"]["client_id"] == second["application"]["client_id"]
    assert first["admin"]["email"] != first["employee"]["email"]
    assert first["authorize_url"].startswith("http://127.0.0.1:8000/oauth/authorize?client_id=")
    assert "resource_owner_type=company" in first["company_authorize_url"]
