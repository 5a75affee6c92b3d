"""The `grantly` command line: human output, --json, and clear failures on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from grantly.cli import app, listening_url
from grantly.demo import DEMO_ADMIN
from tests.conftest import Person, callback_params, consent, free_port, sign_in


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
    assert f"Grantly serving http://127.0.0.1:{port} on" in printed

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
