"""Faults of PostgreSQL under a running `grantly serve`, injected for real on the machine's
server, in a role and a database of the test's own: its sessions terminated, the database
refusing connections then dropped (and restored from a copy), the role's connection limit
taken, its login revoked, the database made read-only.

While the database is down, every request (the token endpoint, a page, a Bearer call to the
API, /readyz) answers 503 with ``Retry-After`` (JSON ``temporarily_unavailable`` for clients)
and the usual headers, and the server logs a warning that carries no statement, parameter nor
traceback. Once it is back, the very next request is served; every token committed before
still works, a code exchanged before cannot be exchanged again, and a code refused while down
(nothing was changed) is exchanged exactly once.

(Stopping the whole server is tests/test_database_faults.py's, on a PostgreSQL of its own.)
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from grantly.oauth.secrets import digest
from tests.conftest import (
    ON_POSTGRESQL,
    REDIRECT_URI,
    TEST_DATABASE,
    World,
    authorize_params,
    callback_params,
    consent,
    csrf_of,
    free_port,
    make_settings,
    seed,
    sign_in,
    start_server,
    stop_server,
)

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not ON_POSTGRESQL, reason="faults of a PostgreSQL server"),
]

USUAL_HEADERS = ("x-request-id", "x-content-type-options", "x-frame-options", "referrer-policy")


# --- the test's own role and database ------------------------------------------------------


def _url(**parts: str) -> str:
    return make_url(TEST_DATABASE).set(**parts).render_as_string(hide_password=False)


ADMIN_URL = _url(database="postgres") if ON_POSTGRESQL else ""


async def _admin(*statements: str) -> list[Any]:
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        return [
            await connection.fetch(statement)
            if statement.startswith("SELECT")
            else await connection.execute(statement)
            for statement in statements
        ]
    finally:
        await connection.close()


def admin(*statements: str) -> list[Any]:
    """Statements as the superuser, on the ``postgres`` database (never the test's own)."""
    return asyncio.run(_admin(*statements))


@dataclass
class Own:
    role: str
    database: str
    limit: int = 3

    @property
    def url(self) -> str:
        return _url(username=self.role, database=self.database)

    def terminate(self) -> None:
        """End every session of the role, and wait until PostgreSQL has let go of them."""

        async def main() -> None:
            sessions = f"SELECT pid FROM pg_stat_activity WHERE usename = '{self.role}'"
            await _admin(f"SELECT pg_terminate_backend(pid) FROM ({sessions}) s")
            for _ in range(500):
                if not (await _admin(sessions))[0]:
                    return
                await asyncio.sleep(0.01)
            raise AssertionError("the role's sessions did not end")

        asyncio.run(main())


@pytest.fixture
def own() -> Iterator[Own]:
    tag = uuid.uuid4().hex[:10]
    own = Own(role=f"grantly_fault_{tag}", database=f"grantly_fault_{tag}")
    admin(
        f"CREATE ROLE {own.role} LOGIN CONNECTION LIMIT {own.limit}",
        f"CREATE DATABASE {own.database} OWNER {own.role}",
    )
    try:
        yield own
    finally:
        admin(
            f"ALTER ROLE {own.role} LOGIN",
            f"DROP DATABASE IF EXISTS {own.database} WITH (FORCE)",
            f"DROP DATABASE IF EXISTS {own.database}_copy WITH (FORCE)",
            f"DROP ROLE IF EXISTS {own.role}",
        )


# --- a running server, with what its clients hold ------------------------------------------


@dataclass
class Served:
    url: str
    world: World
    log: Path
    browser: httpx.Client
    exchanged: str  # a code exchanged before the fault
    spare: str  # a code issued before the fault, not exchanged
    access_token: str
    refresh_token: str
    stranger_cookies: httpx.Cookies = field(default_factory=httpx.Cookies)
    stranger_csrf: str = ""

    def exchange(self, code: str) -> httpx.Response:
        app = self.world.app
        return httpx.post(
            f"{self.url}/oauth/token",
            auth=(app.client_id, app.client_secret or ""),
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
            timeout=30,
        )

    def refresh(self) -> httpx.Response:
        app = self.world.app
        return httpx.post(
            f"{self.url}/oauth/token",
            auth=(app.client_id, app.client_secret or ""),
            data={"grant_type": "refresh_token", "refresh_token": self.refresh_token},
            timeout=30,
        )

    def api(self) -> httpx.Response:
        return httpx.get(
            f"{self.url}/api/v1/me",
            headers={"Authorization": f"Bearer {self.access_token}"},
            timeout=30,
        )

    def page(self) -> httpx.Response:
        return self.browser.get("/oauth/authorize", params=authorize_params(self.world.app))

    def readyz(self) -> httpx.Response:
        return httpx.get(f"{self.url}/readyz", timeout=30)

    def sign_in(self) -> httpx.Response:
        """A sign-in from another browser, on the form it was given before the fault: its
        attempt is counted (in the database, with no Redis) before any password is checked."""
        with httpx.Client(base_url=self.url, timeout=30, cookies=self.stranger_cookies) as other:
            return other.post(
                "/login",
                data={
                    "email": self.world.employee.email,
                    "password": self.world.employee.password,
                    "csrf_token": self.stranger_csrf,
                },
            )

    def wrong_secret(self) -> httpx.Response:
        """A client authentication that fails: its failure is counted in the database."""
        return httpx.post(
            f"{self.url}/oauth/token",
            auth=(self.world.app.client_id, "not-the-secret"),
            data={"grant_type": "refresh_token", "refresh_token": self.refresh_token},
            timeout=30,
        )

    def secrets(self) -> list[str]:
        """What must never reach the log: the values clients hold and their digests (the
        statements' parameters), the client's secret, the person's email."""
        values = [self.exchanged, self.spare, self.access_token, self.refresh_token]
        return [
            *values,
            *(digest(value) for value in values),
            self.world.app.client_secret or "",
            self.world.admin.email,
        ]


@contextmanager
def serve(database_url: str, tmp_path: Path) -> Iterator[Served]:
    """`grantly serve` on this database, seeded, with a code exchanged and a code kept."""
    url = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(tmp_path, issuer=url, database_url=database_url)
    world = seed(settings)
    log = tmp_path / "server.log"
    process = start_server(settings, url, log)
    try:
        with httpx.Client(base_url=url, timeout=30) as browser:
            sign_in(browser, world.admin)
            exchanged, spare = (
                callback_params(consent(browser, authorize_params(world.app)))["code"]
                for _ in range(2)
            )
            served = Served(url, world, log, browser, exchanged, spare, "", "")
            with httpx.Client(base_url=url, timeout=30) as stranger:
                served.stranger_csrf = csrf_of(stranger.get("/login").text)
                served.stranger_cookies = stranger.cookies
            tokens = served.exchange(exchanged)
            assert tokens.status_code == 200, tokens.text
            served.access_token = tokens.json()["access_token"]
            served.refresh_token = tokens.json()["refresh_token"]
            assert served.api().status_code == 200
            yield served
    finally:
        stop_server(process)


@pytest.fixture
def served(own: Own, tmp_path: Path) -> Iterator[Served]:
    with serve(own.url, tmp_path) as served:  # migrated as the role: it owns every table
        yield served


# --- what the clients get ------------------------------------------------------------------


def assert_down(served: Served) -> None:
    """Every kind of request answers 503 in its form, with Retry-After and the usual headers;
    the spare code is refused too (and so stays unused: nothing was changed)."""
    answers = {
        "token": served.exchange(served.spare),
        "page": served.page(),
        "api": served.api(),
        "readyz": served.readyz(),
        "sign-in": served.sign_in(),
        "wrong-secret": served.wrong_secret(),
    }
    for kind, response in answers.items():
        assert response.status_code == 503, (kind, response.status_code, response.text)
        assert response.headers["retry-after"].isdigit(), kind
        if kind in ("token", "api", "wrong-secret"):
            assert response.headers["content-type"].startswith("application/json"), kind
            assert response.json()["error"] == "temporarily_unavailable", kind
        for header in USUAL_HEADERS:
            assert header in response.headers, (header, "on the 503 of", kind)
    page = answers["page"]
    assert page.headers["content-type"].startswith("text/html")
    assert "briefly unavailable" in page.text
    # A missing page needs no database: still a 404 page, only without the signed-in
    # navigation it cannot read (web/errors.py).
    missing = served.browser.get("/no/such/page", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and "Page not found" in missing.text
    assert "Sign out" not in missing.text
    assert answers["readyz"].json()["database"] == "unreachable"


def assert_recovered(served: Served) -> None:
    """The first request once the database is back is served; every token committed before
    works; the code refused while down is exchanged, once; no code is exchanged twice."""
    first = served.api()
    assert first.status_code == 200, first.text  # the first request after the fault
    assert served.readyz().status_code == 200
    assert served.page().status_code == 200
    rotated = served.refresh()  # the refresh token committed before
    assert rotated.status_code == 200, rotated.text
    served.access_token = rotated.json()["access_token"]
    served.refresh_token = rotated.json()["refresh_token"]
    assert served.api().status_code == 200
    spare = served.exchange(served.spare)
    assert spare.status_code == 200, spare.text
    # Last: a replay revokes the tokens of its code's grant (RFC 6749 §4.1.2).
    for code in (served.spare, served.exchanged):
        replay = served.exchange(code)
        assert replay.status_code == 400, replay.text
        assert replay.json()["error"] == "invalid_grant"


def assert_logged(served: Served) -> None:
    """A warning for each 503 (readyz's own are not logged), naming no statement, parameter
    nor secret; no traceback, no error line."""
    text = served.log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    warnings = [
        line
        for line in lines
        if line.get("level") == "warning" and "database unavailable" in line.get("event", "")
    ]
    assert len(warnings) >= 3, text[-3000:]
    for secret in served.secrets():
        assert secret not in text
    for statement in ("SELECT ", "INSERT ", "UPDATE ", "DELETE ", "$1"):
        assert statement not in text
    assert "Traceback" not in text, "no traceback in the server's log"
    errors = [line["event"] for line in lines if line.get("level") in ("error", "critical")]
    assert not errors, ("no error line in the server's log", repr(errors[:1]))
    statuses = {
        line["status"]
        for line in lines
        if line.get("event") == "request" and line.get("path") == "/api/v1/me"
    }
    assert 500 not in statuses, "the access line of a 503 says 503, not 500"


# --- the faults ----------------------------------------------------------------------------


def test_terminated_sessions_the_next_request_is_served(own: Own, served: Served) -> None:
    """Every session of the server ended (pg_terminate_backend, as a failover or an operator
    does): nothing is down, and no request fails for the connections the server kept."""
    for _ in range(3):
        own.terminate()
        assert served.api().status_code == 200  # at once, on a connection the server kept
        assert served.readyz().status_code == 200
    own.terminate()
    assert_recovered(served)
    assert "database unavailable" not in served.log.read_text()


def test_a_database_that_refuses_connections_then_is_dropped_and_restored(
    own: Own, served: Served
) -> None:
    """ALLOW_CONNECTIONS false (55000 at connect), then the database dropped (3D000) and
    restored from a copy taken while it was closed: 503 throughout, every commit there after."""
    admin(f"ALTER DATABASE {own.database} ALLOW_CONNECTIONS false")
    own.terminate()
    assert_down(served)
    admin(
        f"CREATE DATABASE {own.database}_copy TEMPLATE {own.database}",
        f"DROP DATABASE {own.database} WITH (FORCE)",
    )
    assert_down(served)
    admin(f"CREATE DATABASE {own.database} TEMPLATE {own.database}_copy OWNER {own.role}")
    assert_recovered(served)
    assert_logged(served)


def test_the_role_s_connections_all_taken(own: Own, served: Served) -> None:
    """Every connection the role may open (its CONNECTION LIMIT) held by someone else:
    PostgreSQL refuses the server's (53300, too many connections) until one is free."""
    own.terminate()

    async def hold() -> list[asyncpg.Connection]:
        return [await asyncpg.connect(own.url) for _ in range(own.limit)]

    loop = asyncio.new_event_loop()
    try:
        held = loop.run_until_complete(hold())
        try:
            assert_down(served)
        finally:
            for connection in held:
                loop.run_until_complete(connection.close())
    finally:
        loop.close()
    assert_recovered(served)
    assert_logged(served)


def test_the_role_may_no_longer_log_in(own: Own, served: Served) -> None:
    """The role's LOGIN revoked and its sessions ended (28000 at connect), then granted
    again."""
    admin(f"ALTER ROLE {own.role} NOLOGIN")
    own.terminate()
    assert_down(served)
    admin(f"ALTER ROLE {own.role} LOGIN")
    assert_recovered(served)
    assert_logged(served)


def test_a_database_that_takes_no_writes(own: Own, served: Served) -> None:
    """As a standby after a failover (here default_transaction_read_only): a code exchange
    is refused with 503 (25006) and /readyz agrees; a Bearer call, which only reads, is
    served. Nothing of the refused exchange was kept: once writable, the code is exchanged."""
    admin(f"ALTER DATABASE {own.database} SET default_transaction_read_only = on")
    own.terminate()
    token = served.exchange(served.spare)
    assert token.status_code == 503, token.text
    assert token.json()["error"] == "temporarily_unavailable"
    assert token.headers["retry-after"].isdigit()
    ready = served.readyz()
    assert ready.status_code == 503
    assert ready.headers["retry-after"].isdigit()
    assert served.api().status_code == 200
    admin(f"ALTER DATABASE {own.database} RESET default_transaction_read_only")
    own.terminate()
    assert_recovered(served)
