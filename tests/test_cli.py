"""The `grantly` command line: human output, --json, and clear failures on bad input."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from alembic import command
from joserfc.jwk import ECKey
from typer.testing import CliRunner

from grantly.cli import app, listening_url
from grantly.demo import DEMO_ADMIN
from grantly.store import migrate
from grantly.store.migrate import alembic_config
from tests.conftest import (
    ON_POSTGRESQL,
    Person,
    _pg_admin,
    _pg_url,
    callback_params,
    consent,
    free_port,
    fresh_database_name,
    run_sql,
    sign_in,
)


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A database of its own, on the backend the suite runs on."""
    if not ON_POSTGRESQL:
        yield f"sqlite:///{tmp_path / 'cli.db'}"
        return
    name = fresh_database_name()
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def cli_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {"GRANTLY_DATABASE_URL": database_url, "GRANTLY_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def grantly(cli_env: dict[str, str]):
    runner = CliRunner()

    def run(*args: str, code: int = 0, input: str | None = None, **extra_env: str):
        result = runner.invoke(app, list(args), env={**cli_env, **extra_env}, input=input)
        assert result.exit_code == code, (result.exit_code, result.output)
        return result

    return run


def _json(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_db_upgrade_says_what_it_changed_and_is_idempotent(grantly) -> None:
    head = migrate.head()
    first = grantly("db", "upgrade").stdout
    assert first.startswith(f"upgraded the database schema to revision {head} (applied 0001, ")
    assert _json(grantly("db", "upgrade", "--json")) == {
        "status": "up to date",
        "revision": head,
        "applied": [],
    }
    assert "up to date (revision" in grantly("db", "upgrade").stdout


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
        "has_password": True,
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


# --- the issuer of a server started on another port ----------------------------------------


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any Grantly setting (GRANTLY_ISSUER above all)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("GRANTLY_")}
    env.update(
        GRANTLY_DATABASE_URL=f"sqlite:///{tmp_path / 'grantly.db'}",
        GRANTLY_DATA_DIR=str(tmp_path / "data"),
        GRANTLY_LOG_FORMAT="console",
        **extra,
    )
    return env


@pytest.fixture
def running(tmp_path: Path) -> Iterator[object]:
    """``running(*args, **env)``: `grantly ARGS` as a process, once it answers /healthz on the
    port given with --port; returns what it printed so far. Stopped at the end of the test."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(*args: str, **env: str) -> str:
        port = args[args.index("--port") + 1]
        output = tmp_path / f"output-{len(processes)}.txt"
        with open(output, "wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "grantly.cli", *args],
                env=_environment(tmp_path, **env),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return output.read_text()
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"grantly {' '.join(args)} did not start:\n" + output.read_text()
                )
            time.sleep(0.1)

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _metadata_issuer(base: str) -> str:
    response = httpx.get(f"{base}/.well-known/oauth-authorization-server", timeout=5)
    assert response.status_code == 200, response.text
    metadata = response.json()
    assert metadata["authorization_endpoint"] == f"{metadata['issuer']}/oauth/authorize"
    return str(metadata["issuer"])


def test_demo_on_another_port_names_that_port_everywhere(running) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    printed = running("demo", "--port", str(port), GRANTLY_ENV="development")

    assert _metadata_issuer(base) == base
    urls = [word for word in printed.split() if word.startswith("http://127.0.0.1:")]
    served = [url for url in urls if not url.startswith("http://127.0.0.1:8765")]  # a redirect URI
    assert any("/oauth/authorize?" in url for url in served), printed
    assert f"{base}/oauth/applications" in served, printed
    for url in served:
        assert url.startswith(f"{base}/") or url.rstrip(",") == base, (url, printed)
    assert ":8000" not in printed

    # The printed authorize URL works on this server, and the authorization response's iss
    # (RFC 9207 §2) is this server's issuer.
    authorize = next(url for url in served if "/oauth/authorize?" in url and "company" not in url)
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    query["redirect_uri"] = "http://127.0.0.1:8765/callback"  # the demo's other redirect URI
    email, password, _name = DEMO_ADMIN
    with httpx.Client(base_url=base, timeout=10, follow_redirects=False) as http:
        sign_in(http, Person(0, email, password, 0, True))
        answer = callback_params(consent(http, query))
    assert answer["iss"] == base
    assert answer["state"] == "demo" and answer["code"]


def test_serve_without_an_issuer_uses_its_port_and_a_set_issuer_wins(running) -> None:
    port = free_port()
    printed = running("serve", "--port", str(port), GRANTLY_ENV="development")
    assert _metadata_issuer(f"http://127.0.0.1:{port}") == f"http://127.0.0.1:{port}"
    assert f"Grantly serving http://127.0.0.1:{port} (1 worker)" in printed

    other = free_port()
    running(
        "serve",
        "--port",
        str(other),
        GRANTLY_ENV="development",
        GRANTLY_ISSUER="https://auth.example",
    )
    assert _metadata_issuer(f"http://127.0.0.1:{other}") == "https://auth.example"


def test_demo_with_an_issuer_set_prints_it(grantly) -> None:
    data = _json(
        grantly(
            "demo",
            "--no-serve",
            "--port",
            "9123",
            "--json",
            GRANTLY_ENV="development",
            GRANTLY_ISSUER="https://auth.example/",
        )
    )
    assert data["authorize_url"].startswith("https://auth.example/oauth/authorize?")


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:9000"),
        ("localhost", "http://localhost:9000"),
        ("0.0.0.0", "http://127.0.0.1:9000"),
        ("::", "http://[::1]:9000"),
        ("::1", "http://[::1]:9000"),
    ],
)
def test_the_listening_url_names_a_reachable_host(host: str, url: str) -> None:
    assert listening_url(host, 9000) == url


# --- naming things, and things that are not there ---------------------------------------------


def _async_url(database_url: str) -> str:
    return database_url.replace("sqlite://", "sqlite+aiosqlite://", 1).replace(
        "postgresql://", "postgresql+asyncpg://", 1
    )


def _sql(database_url: str, statement: str) -> list[tuple[object, ...]]:
    return run_sql(_async_url(database_url), [statement])[0]


@pytest.fixture
def acme(grantly) -> dict[str, object]:
    """Company 1 with an admin, an employee, a confidential and a public application, and an
    employee's live tokens (minted through the real authorization code grant)."""
    grantly("companies", "create", "--name", "Acme")
    people = [
        _json(
            grantly(
                "users",
                "create",
                "--company",
                "1",
                "--email",
                email,
                "--password",
                "12345678",
                *flags,
                "--json",
            )
        )
        for email, flags in (("ada@acme.example", ["--admin"]), ("eve@acme.example", []))
    ]
    sync, spa = (
        _json(
            grantly(
                "apps",
                "create",
                "--company",
                "1",
                "--name",
                name,
                "--redirect-uri",
                "https://sync.example/cb",
                *flags,
                "--json",
            )
        )
        for name, flags in (("Sync", []), ("SPA", ["--public"]))
    )
    grantly(
        "dev", "mint", "--client-id", sync["client_id"], "--user-email", "eve@acme.example",
        "--redirect-uri", "https://sync.example/cb", "--kind", "access_token", "--count", "2",
        GRANTLY_ENV="development",
    )  # fmt: skip
    return {"admin": people[0], "employee": people[1], "sync": sync, "spa": spa}


NOT_FOUND = [
    (["users", "create", "--company", "99", "--email", "a@b.c", "--password", "12345678"],
     "company 99"),
    (["apps", "create", "--company", "99", "--name", "X", "--redirect-uri", "https://x.example/"],
     "company 99"),
    (["api-keys", "create", "--company", "99", "--name", "K"], "company 99"),
    (["api-keys", "list", "--company", "99"], "company 99"),
    (["users", "list", "--company", "99"], "company 99"),
    (["apps", "list", "--company", "99"], "company 99"),
    (["api-keys", "revoke", "--id", "99"], "API key 99"),
    (["users", "deactivate", "--id", "99"], "user 99"),
    (["users", "deactivate", "--id", "99999999999"], "user 99999999999"),
    (["users", "deactivate", "--email", "Nobody@Acme.example"],
     "user with email nobody@acme.example"),
    (["users", "activate", "--id", "99"], "user 99"),
    (["users", "invite", "--id", "99"], "user 99"),
    (["users", "invite", "--email", "nobody@acme.example"], "user with email nobody@acme.example"),
    (["apps", "show", "--id", "99"], "application 99"),
    (["apps", "show", "--client-id", "nope"], "application with client_id nope"),
    (["apps", "rotate-secret", "--id", "99"], "application 99"),
    (["apps", "delete", "--client-id", "nope"], "application with client_id nope"),
    (["dev", "mint", "--client-id", "x", "--user-email", "no@b.c", "--redirect-uri", "x"],
     "user with email no@b.c"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "what"), NOT_FOUND, ids=[" ".join(a[:2]) for a, _ in NOT_FOUND])
def test_whatever_is_not_there_fails_with_the_same_words(
    grantly, args: list[str], what: str
) -> None:
    grantly("companies", "create", "--name", "Acme")
    env = {"GRANTLY_ENV": "development"}
    human = grantly(*args, code=1, **env)
    assert human.stderr == f"error: there is no {what}.\n"
    assert human.stdout == ""
    assert _json(grantly(*args, "--json", code=1, **env)) == {"error": f"there is no {what}."}


@pytest.mark.parametrize(
    "args",
    [
        ["users", "deactivate"],
        ["users", "activate", "--id", "1", "--email", "ada@acme.example"],
        ["users", "invite"],
        ["apps", "show"],
        ["apps", "delete", "--id", "1", "--client-id", "x"],
    ],
)
def test_a_person_or_application_is_named_one_way(grantly, args: list[str]) -> None:
    what, options = ("person", "--id or --email")
    if args[0] == "apps":
        what, options = ("application", "--id or --client-id")
    message = f"name the {what} with {options} (one of them)."
    assert grantly(*args, code=2).stderr == f"error: {message}\n"
    assert _json(grantly(*args, "--json", code=2)) == {"error": message}


def test_people_are_deactivated_by_email_or_id_and_told_what_stopped(grantly, acme) -> None:
    out = grantly("users", "deactivate", "--email", "EVE@acme.example").stdout
    employee = acme["employee"]
    assert out == (
        f"deactivated user {employee['id']}: eve@acme.example (company 1)\n"
        "  ended 0 sign-in sessions; 4 live user tokens stopped working\n"
    )  # two access tokens, each with its refresh token
    again = _json(grantly("users", "deactivate", "--id", str(employee["id"]), "--json"))
    assert again["changed"] is False and again["active"] is False
    assert (
        "already deactivated; nothing changed"
        in grantly("users", "deactivate", "--id", str(employee["id"])).stdout
    )


def test_activating_a_person_lets_them_sign_in_but_brings_no_old_token_back(grantly, acme) -> None:
    employee = acme["employee"]
    grantly("users", "deactivate", "--id", str(employee["id"]))
    activated = _json(grantly("users", "activate", "--email", "eve@acme.example", "--json"))
    created = {key: value for key, value in employee.items() if key != "has_password"}
    assert activated == {**created, "name": "eve", "active": True, "changed": True}
    shown = _json(grantly("apps", "show", "--id", str(acme["sync"]["id"]), "--json"))
    assert shown["live_tokens"] == 0
    assert (
        "is already active; nothing changed"
        in grantly("users", "activate", "--id", str(employee["id"])).stdout
    )


def test_a_person_created_without_a_password_is_told_how_to_get_one(grantly) -> None:
    grantly("companies", "create", "--name", "Acme")
    out = grantly("users", "create", "--company", "1", "--email", "bo@acme.example").stdout
    [(user_id,)] = re.findall(r"created user (\d+): bo@acme.example", out)
    assert f"no password yet: `grantly users invite --id {user_id}` prints a link" in out
    created = _json(
        grantly("users", "create", "--company", "1", "--email", "cy@acme.example", "--json")
    )
    assert created["has_password"] is False
    listed = _json(grantly("users", "list", "--company", "1", "--json"))["users"]
    assert [(u["email"], u["has_password"]) for u in listed] == [
        ("bo@acme.example", False),
        ("cy@acme.example", False),
    ]
    assert grantly("users", "list").stdout.splitlines()[0].endswith("\tactive\tno password")


def test_users_invite_prints_a_one_time_link_and_when_it_expires(
    grantly, acme, database_url: str
) -> None:
    employee = acme["employee"]
    before = int(time.time())
    invited = _json(
        grantly(
            "users", "invite", "--email", "Eve@acme.example", "--json",
            GRANTLY_ISSUER="https://grantly.example",
        )
    )  # fmt: skip
    assert invited["id"] == employee["id"] and invited["email"] == "eve@acme.example"
    assert invited["link"].startswith("https://grantly.example/set-password?token=gin_")
    assert before + 7 * 86400 <= invited["expires_at"] <= int(time.time()) + 7 * 86400
    token = parse_qs(urlsplit(invited["link"]).query)["token"][0]
    [(stored,)] = _sql(database_url, "SELECT digest FROM invitations")
    assert stored != token and token not in str(_sql(database_url, "SELECT * FROM invitations"))
    human = grantly(
        "users", "invite", "--id", str(employee["id"]), GRANTLY_ISSUER="https://grantly.example"
    )
    assert human.stdout.startswith(f"invited user {employee['id']}: eve@acme.example (company 1)\n")
    assert "  link: https://grantly.example/set-password?token=gin_" in human.stdout
    assert "(shown once; works once, until " in human.stdout
    assert human.stderr == ""
    # Only the newest link works: the first one was replaced.
    rows = _sql(database_url, "SELECT revoked_at IS NOT NULL FROM invitations ORDER BY id")
    assert [bool(revoked) for (revoked,) in rows] == [True, False]
    listed = grantly("users", "list", "--company", "1").stdout.splitlines()
    assert "\tinvited until " in listed[1]


def test_users_invite_warns_when_the_links_host_is_only_the_default(grantly, acme) -> None:
    result = grantly("users", "invite", "--email", "eve@acme.example")
    assert "link: http://127.0.0.1:8000/set-password?token=gin_" in result.stdout
    assert "warning: GRANTLY_ISSUER is not set" in result.stderr


def test_a_deactivated_person_is_not_invited(grantly, acme) -> None:
    grantly("users", "deactivate", "--email", "eve@acme.example")
    refused = grantly("users", "invite", "--email", "eve@acme.example", code=1)
    assert "is deactivated: activate them first (`grantly users activate --id " in refused.stderr
    assert refused.stdout == ""


def test_deactivating_ends_a_pending_invitation_and_activating_does_not_bring_it_back(
    grantly, acme, database_url: str
) -> None:
    grantly("users", "invite", "--email", "eve@acme.example")
    grantly("users", "deactivate", "--email", "eve@acme.example")
    grantly("users", "activate", "--email", "eve@acme.example")
    [(revoked,)] = _sql(database_url, "SELECT revoked_at IS NOT NULL FROM invitations")
    assert revoked
    assert grantly("users", "list").stdout.splitlines()[1].endswith("\tpassword set")


def test_people_commands_write_the_audit_trail(grantly, acme, database_url: str) -> None:
    grantly("users", "create", "--company", "1", "--email", "bo@acme.example")
    grantly("users", "invite", "--email", "bo@acme.example")
    grantly("users", "deactivate", "--email", "bo@acme.example")
    grantly("users", "activate", "--email", "bo@acme.example")
    grantly("users", "activate", "--email", "bo@acme.example")  # nothing changed: no event
    found = _sql(
        database_url,
        "SELECT event, detail FROM audit_events WHERE event LIKE 'user.%' ORDER BY id",
    )
    events = [(event, json.loads(str(detail))) for event, detail in found]
    events = [(event, detail) for event, detail in events if detail["email"] == "bo@acme.example"]
    assert [event for event, _ in events] == [
        "user.created",
        "user.invited",
        "user.deactivated",
        "user.activated",
    ]
    assert all(
        detail["email"] == "bo@acme.example" and detail["via"] == "cli" for _, detail in events
    )
    assert "gin_" not in str(found)


def test_companies_and_users_are_listed(grantly, acme) -> None:
    assert _json(grantly("companies", "list", "--json")) == {
        "companies": [{"id": 1, "name": "Acme"}]
    }
    assert grantly("companies", "list").stdout == "1\tAcme\n"
    grantly("companies", "create", "--name", "Empty")
    assert grantly("users", "list", "--company", "2").stdout == "company 2 has no users\n"
    users = _json(grantly("users", "list", "--company", "1", "--json"))["users"]
    assert [u["email"] for u in users] == ["ada@acme.example", "eve@acme.example"]
    assert grantly("users", "list").stdout.splitlines() == [
        f"{acme['admin']['id']}\tada@acme.example\tada\tcompany 1\tadmin\tactive\tpassword set",
        f"{acme['employee']['id']}\teve@acme.example\teve\tcompany 1\tuser\tactive\tpassword set",
    ]


def test_no_companies_yet(grantly) -> None:
    assert "no companies yet" in grantly("companies", "list").stdout
    assert _json(grantly("companies", "list", "--json")) == {"companies": []}


def test_applications_are_listed_and_shown_by_id_or_client_id(grantly, acme) -> None:
    sync, spa = acme["sync"], acme["spa"]
    listed = _json(grantly("apps", "list", "--company", "1", "--json"))["applications"]
    assert [a["client_id"] for a in listed] == [sync["client_id"], spa["client_id"]]
    assert grantly("apps", "list").stdout.splitlines() == [
        f"{sync['id']}\t{sync['client_id']}\tSync\tcompany 1\tconfidential",
        f"{spa['id']}\t{spa['client_id']}\tSPA\tcompany 1\tpublic",
    ]
    by_client_id = _json(grantly("apps", "show", "--client-id", sync["client_id"], "--json"))
    assert by_client_id == _json(grantly("apps", "show", "--id", str(sync["id"]), "--json"))
    assert by_client_id["live_tokens"] == 4  # two access tokens, each with its refresh token
    assert "client_secret" not in by_client_id
    human = grantly("apps", "show", "--id", str(sync["id"])).stdout
    assert (
        f"application {sync['id']}: Sync\n" in human
        and "live tokens:   2 access tokens and 2 refresh tokens (1 user grant)" in human
    )


def test_rotating_a_secret_says_the_old_one_stopped(grantly, acme) -> None:
    sync = acme["sync"]
    rotated = _json(grantly("apps", "rotate-secret", "--id", str(sync["id"]), "--json"))
    assert rotated["client_secret"].startswith("gcs_")
    assert rotated["client_secret"] != sync["client_secret"]
    assert rotated["live_tokens"] == 4
    human = grantly("apps", "rotate-secret", "--client-id", sync["client_id"]).stdout
    assert "the old secret stopped working; 4 live tokens keep working" in human
    public = grantly("apps", "rotate-secret", "--id", str(acme["spa"]["id"]), code=2)
    assert "is public: it has no secret to rotate." in public.stderr


def test_deleting_an_application_says_what_stopped_and_the_trail_keeps_its_name(
    grantly, acme, database_url: str
) -> None:
    sync = acme["sync"]
    out = grantly("apps", "delete", "--client-id", sync["client_id"], "--yes").stdout
    assert out.startswith(f"deleted application {sync['id']}: Sync (client_id ")
    assert "2 access tokens and 2 refresh tokens (1 user grant) stopped working" in out
    assert (
        "there is no application" in grantly("apps", "show", "--id", str(sync["id"]), code=1).stderr
    )
    [(detail,)] = _sql(
        database_url,
        f"SELECT detail FROM audit_events WHERE event = 'application.deleted' "
        f"AND application_id = {sync['id']}",
    )
    assert json.loads(str(detail))["name"] == "Sync"
    deleted = _json(grantly("apps", "delete", "--id", str(acme["spa"]["id"]), "--yes", "--json"))
    assert deleted["deleted"] is True and deleted["tokens_stopped"] == 0
    newer = _json(
        grantly(
            "apps", "create", "--company", "1", "--name", "New", "--redirect-uri",
            "https://new.example/cb", "--json",
        )
    )  # fmt: skip
    assert newer["id"] > acme["spa"]["id"]  # ids of deleted applications are not given again


def test_deleting_without_yes_and_without_a_terminal_refuses_and_changes_nothing(
    grantly, acme
) -> None:
    sync = acme["sync"]
    refused = grantly("apps", "delete", "--id", str(sync["id"]), code=2)
    assert refused.stdout == ""
    assert refused.stderr.startswith(
        f"error: Deleting application {sync['id']} (Sync, client_id {sync['client_id']}) "
        "stops 2 access tokens and 2 refresh tokens (1 user grant) at once"
    )
    assert "run it again with --yes" in refused.stderr
    as_json = _json(grantly("apps", "delete", "--id", str(sync["id"]), "--json", code=2))
    assert "run it again with --yes" in as_json["error"]
    assert _json(grantly("apps", "show", "--id", str(sync["id"]), "--json"))["live_tokens"] == 4


def test_deleting_at_a_terminal_asks_first(grantly, acme, monkeypatch) -> None:
    monkeypatch.setattr("grantly.cli._interactive", lambda: True)
    sync = acme["sync"]
    kept = grantly("apps", "delete", "--id", str(sync["id"]), code=1, input="n\n")
    assert "stops 2 access tokens and 2 refresh tokens (1 user grant)" in kept.stderr
    assert f"Delete application {sync['id']} (Sync)? [y/N]" in kept.stderr
    assert "not confirmed; nothing was changed." in kept.stderr
    assert _json(grantly("apps", "show", "--id", str(sync["id"]), "--json"))["live_tokens"] == 4
    gone = grantly("apps", "delete", "--id", str(sync["id"]), input="y\n")
    assert f"\ndeleted application {sync['id']}: Sync (client_id" in gone.stdout  # after the echo


def test_updating_an_application_says_what_changed_and_keeps_tokens_on_a_rename(
    grantly, acme
) -> None:
    sync = acme["sync"]
    out = grantly(
        "apps", "update", "--id", str(sync["id"]), "--name", "Sync 2",
        "--redirect-uri", "https://sync.example/cb", "--redirect-uri", "https://two.example/cb",
    ).stdout  # fmt: skip
    assert out == (f"updated application {sync['id']}: Sync 2\n  changed: name, redirect URIs\n")
    shown = _json(grantly("apps", "show", "--client-id", sync["client_id"], "--json"))
    assert shown["name"] == "Sync 2" and shown["live_tokens"] == 4
    assert shown["redirect_uris"] == ["https://sync.example/cb", "https://two.example/cb"]
    same = grantly("apps", "update", "--id", str(sync["id"]), "--name", "Sync 2").stdout
    assert same == f"application {sync['id']} (Sync 2) already is so; nothing changed\n"


def test_an_update_that_revokes_needs_yes_and_says_how_many_stopped(grantly, acme) -> None:
    sync = acme["sync"]
    refused = grantly("apps", "update", "--id", str(sync["id"]), "--scope", "read", code=2)
    assert "revokes every grant" in refused.stderr and "--yes" in refused.stderr
    assert _json(grantly("apps", "show", "--id", str(sync["id"]), "--json"))["scopes"] == [
        "read",
        "write",
    ]
    updated = _json(
        grantly("apps", "update", "--id", str(sync["id"]), "--scope", "read", "--yes", "--json")
    )
    assert updated["changed"] == ["scopes"] and updated["scopes"] == ["read"]
    assert updated["tokens_revoked"] == 4
    assert updated["revoked"] == {
        "access_tokens": 2, "refresh_tokens": 2, "user_grants": 1, "company_grants": 0,
    }  # fmt: skip
    again = grantly("apps", "update", "--id", str(sync["id"]), "--scope", "write").stdout
    assert again.endswith("  no token was working, so none was revoked\n")


def test_turning_a_public_application_confidential_prints_its_secret_once(grantly, acme) -> None:
    spa = acme["spa"]
    out = grantly(
        "apps", "update", "--id", str(spa["id"]), "--confidential", "--consent", "remember",
        "--access-token-lifetime", "600",
    ).stdout  # fmt: skip
    assert "changed: client type, consent, access-token lifetime" in out
    assert re.search(r"  client_secret: gcs_\S+  \(shown once\)", out)
    shown = _json(grantly("apps", "show", "--id", str(spa["id"]), "--json"))
    assert shown["confidential"] is True and shown["access_token_lifetime"] == 600
    bad = grantly("apps", "update", "--id", str(spa["id"]), "--access-token-lifetime", "5", code=2)
    assert "the access-token lifetime must be" in bad.stderr
    reset = _json(grantly("apps", "update", "--id", str(spa["id"]), "--default-lifetime", "--json"))
    assert reset["access_token_lifetime"] is None and reset["changed"] == ["access-token lifetime"]


def test_revoking_a_key_twice_says_it_was_already_revoked(grantly) -> None:
    grantly("companies", "create", "--name", "Acme")
    key = _json(grantly("api-keys", "create", "--company", "1", "--name", "CI", "--json"))
    first = grantly("api-keys", "revoke", "--id", str(key["id"])).stdout
    assert first.startswith(f"revoked API key {key['id']}: CI (company 1)")
    second = grantly("api-keys", "revoke", "--id", str(key["id"])).stdout
    assert re.fullmatch(
        rf"API key {key['id']} \(CI\) was already revoked on \S+ \S+ UTC; nothing changed\n",
        second,
    )
    again = _json(grantly("api-keys", "revoke", "--id", str(key["id"]), "--json"))
    assert again["changed"] is False and again["revoked_at"]


# --- help and logs ----------------------------------------------------------------------------


def _command_paths() -> list[list[str]]:
    import typer.main

    def walk(command, path: list[str]) -> list[list[str]]:
        found = [path]
        for name, sub in getattr(command, "commands", {}).items():
            found += walk(sub, [*path, name])
        return found

    return walk(typer.main.get_command(app), [])


def _early_breaks(text: str) -> list[str]:
    """Lines that end a sentence's line while the next word would still have fitted."""
    broken = []
    lines = text.splitlines()
    for line, following in itertools.pairwise(lines):
        boxed = line.startswith("│") and following.startswith("│")
        inner, after = (line[1:-1], following[1:-1]) if boxed else (line, following)
        words = after.split()
        indent = len(after) - len(after.lstrip())
        # A new option row (or its [default] and [required]) starts a line of its own.
        if not words or words[0][0] in "[-*" or not inner.strip() or indent < 1:
            continue
        if boxed:
            continues = indent > 1 and inner[indent - 1] == " " and inner[indent] != " "
            room = len(inner) - 1
        else:
            continues = line.startswith(" ") and not line.startswith("  ")
            room = 79
        text_end = len(inner.rstrip())
        if continues and text_end + 1 + len(words[0]) <= room:
            broken.append(f"{line.rstrip()}\n{following.rstrip()}")
    return broken


def test_no_help_text_breaks_mid_sentence_at_80_columns(grantly) -> None:
    paths = _command_paths()
    assert ["users", "activate"] in paths and ["apps", "rotate-secret"] in paths
    for path in paths:
        text = grantly(*path, "--help", COLUMNS="80", TERMINAL_WIDTH="80").stdout
        assert max(len(line) for line in text.splitlines()) <= 80, path
        assert _early_breaks(text) == [], path
        cut = [
            line
            for line in text.splitlines()
            if line.rstrip().endswith(("…", "...")) and not line.startswith("Usage:")
        ]
        assert cut == [], (path, cut)  # nothing cut short either
        assert "<bool>" not in text, path


def test_migration_log_lines_reach_the_terminal_only_with_verbose(cli_env) -> None:
    # The real entry point, with the logging it configures (the test runner's has none).
    env = {**os.environ, **cli_env, "PYTHONPATH": os.pathsep.join(sys.path)}

    def grantly(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from grantly.cli import main; main()", *args],
            env=env, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip

    quiet = grantly("companies", "create", "--name", "Acme", "--json")
    assert quiet.stderr == ""
    assert json.loads(quiet.stdout) == {"id": 1, "name": "Acme"}
    command.downgrade(alembic_config(_async_url(cli_env["GRANTLY_DATABASE_URL"])), "0006")
    loud = grantly("--verbose", "companies", "list")  # migrates to 0007 (and on) again
    assert loud.stdout == "1\tAcme\n"
    assert "Running upgrade 0006 -> 0007" in loud.stderr


# --- resource servers (RFC 8707) ------------------------------------------------------------


def test_a_resource_server_is_registered_listed_and_deleted(grantly, cli_env) -> None:
    import hashlib

    created = _json(
        grantly(
            "resources", "create", "--uri", "HTTPS://Reports.Example/api", "--name", "Reports",
            "--scope", "read", "--json",
        )
    )  # fmt: skip
    assert set(created) == {"id", "uri", "name", "scopes", "client_id", "client_secret"}
    assert created["uri"] == "https://reports.example/api"  # normalized
    assert created["scopes"] == ["read"] and created["name"] == "Reports"
    assert created["client_id"].startswith("rs.")
    assert created["client_secret"].startswith("grs_")
    # Only the secret's digest is kept.
    [(stored,)] = _sql(
        cli_env["GRANTLY_DATABASE_URL"], "SELECT secret_digest FROM resource_servers"
    )
    assert stored == hashlib.sha256(created["client_secret"].encode()).hexdigest()

    listed = _json(grantly("resources", "list", "--json"))["resource_servers"]
    assert listed == [{k: v for k, v in created.items() if k != "client_secret"}]
    human = grantly("resources", "list").stdout
    assert "https://reports.example/api\tReports\tread" in human
    assert created["client_secret"] not in human

    deleted = _json(grantly("resources", "delete", "--id", str(created["id"]), "--yes", "--json"))
    assert deleted["deleted"] is True and deleted["uri"] == created["uri"]
    assert "there are no resource servers yet" in grantly("resources", "list").stdout


def test_registering_a_resource_server_says_how_it_introspects(grantly) -> None:
    out = grantly("resources", "create", "--uri", "https://files.example", "--name", "Files").stdout
    assert out.startswith("created resource server 1: Files\n")
    assert "scopes:        (any scope)" in out
    assert "client_secret: grs_" in out and "(shown once)" in out
    assert "/oauth/introspect" in out


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("reports.example/api", "not an absolute URI"),
        ("https://reports.example/api#top", "fragment"),
        ("http://reports.example/api", "https"),
        ("http://127.0.0.1:9000/api", "GRANTLY_ENV=development"),
        ("ftp://reports.example/", "https"),
        ("http://127.0.0.1:8000/api", "Grantly's own API"),
    ],
)
def test_a_resource_server_uri_is_absolute_https_and_not_grantly_s_own(
    grantly, uri: str, problem: str
) -> None:
    result = grantly("resources", "create", "--uri", uri, "--name", "X", code=2)
    assert problem in result.stderr
    assert _json(grantly("resources", "create", "--uri", uri, "--name", "X", "--json", code=2))[
        "error"
    ]


def test_http_on_loopback_is_registered_in_development(grantly) -> None:
    created = _json(
        grantly(
            "resources", "create", "--uri", "http://127.0.0.1:9000/api", "--name", "Local",
            "--json", GRANTLY_ENV="development",
        )
    )  # fmt: skip
    assert created["uri"] == "http://127.0.0.1:9000/api"


def test_a_resource_server_uri_is_registered_once_and_its_scopes_are_the_server_s(grantly) -> None:
    grantly("resources", "create", "--uri", "https://reports.example/api", "--name", "A")
    again = grantly(
        "resources", "create", "--uri", "https://REPORTS.example:443/api", "--name", "B", code=1
    )
    assert "already registered" in again.stderr
    unknown = grantly(
        "resources", "create", "--uri", "https://other.example", "--name", "C", "--scope", "admin",
        code=2,
    )  # fmt: skip
    assert "unknown scope 'admin'" in unknown.stderr
    empty = grantly("resources", "create", "--uri", "https://x.example", "--name", " ", code=2)
    assert "--name" in empty.stderr


def test_deleting_a_resource_server_asks_first(grantly, cli_env) -> None:
    created = _json(
        grantly("resources", "create", "--uri", "https://files.example", "--name", "F", "--json")
    )
    runner = CliRunner()
    args = ["resources", "delete", "--id", str(created["id"])]
    declined = runner.invoke(app, args, env=cli_env, input="n\n")
    assert declined.exit_code == 1 and "nothing was deleted" in declined.stderr
    assert _json(grantly("resources", "list", "--json"))["resource_servers"]
    accepted = runner.invoke(app, args, env=cli_env, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "deleted resource server" in accepted.stdout
    assert "invalid_target" in accepted.stdout
    missing = grantly("resources", "delete", "--id", str(created["id"]), "--yes", code=1)
    assert missing.stderr == f"error: there is no resource server {created['id']}.\n"


def test_apps_take_the_token_security_options(grantly, tmp_path: Path) -> None:
    grantly("db", "upgrade")
    company = _json(grantly("companies", "create", "--name", "Acme", "--json"))
    created = _json(
        grantly(
            "apps", "create", "--company", str(company["id"]), "--name", "Machines",
            "--redirect-uri", "https://machines.example/cb", "--access-token-format", "jwt",
            "--dpop", "required", "--grant-type", "client_credentials", "--require-par",
            "--json",
        )
    )  # fmt: skip
    assert created["access_token_format"] == "jwt"
    assert created["dpop"] == "required"
    assert created["require_par"] is True
    assert "client_credentials" in created["grant_types"]
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps({"keys": [ECKey.generate_key("P-256").as_dict(private=False)]}))
    updated = _json(
        grantly(
            "apps", "update", "--client-id", created["client_id"], "--auth-method", "private_key_jwt",
            "--jwks", str(keys), "--no-require-par", "--json",
        )
    )  # fmt: skip
    assert updated["token_endpoint_auth_method"] == "private_key_jwt"
    assert updated["require_par"] is False
    assert updated["access_token_format"] == "jwt"  # kept
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [ECKey.generate_key("P-256").as_dict(private=True)]}))
    refused = grantly(
        "apps", "update", "--client-id", created["client_id"], "--jwks", str(private), code=2
    )  # fmt: skip
    assert "private key" in refused.output
    wrong = grantly(
        "apps", "create", "--company", str(company["id"]), "--name", "Mobile",
        "--redirect-uri", "http://127.0.0.1/cb", "--public", "--grant-type",
        "client_credentials", code=2,
    )  # fmt: skip
    assert "confidential applications only" in wrong.output
