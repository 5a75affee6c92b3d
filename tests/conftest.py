"""Fixtures shared by every test: a real app on a real SQLite file, seeded through the same
code the CLI uses, and helpers that drive sign-in and consent like a person would."""

from __future__ import annotations

import asyncio
import dataclasses
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from grantly import admin
from grantly.app import create_app
from grantly.oauth.clock import FrozenClock
from grantly.oauth.registration import validate
from grantly.passwords import hash_password
from grantly.settings import Settings
from grantly.store import migrate
from grantly.store.database import open_database

# The client metadata document server's fixtures, for every test module.
from tests.document_server import document_ca, documents  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
REDIRECT_URI = "https://client.example/callback"
PASSWORD = "correct horse battery"


@dataclass
class Person:
    id: int
    email: str
    password: str
    company_id: int
    admin: bool


@dataclass
class Client:
    id: int
    client_id: str
    client_secret: str | None
    redirect_uris: list[str]
    company_id: int


@dataclass
class World:
    """A seeded tenant: company A with an admin, an employee and an application; company B
    with its own admin and application."""

    settings: Settings
    company_a: int
    company_b: int
    admin: Person
    employee: Person
    other_admin: Person
    app: Client
    other_app: Client

    def run(self, coro_factory: Any) -> Any:
        return run_db(self.settings, coro_factory)


def run_db(settings: Settings, work: Any) -> Any:
    async def main() -> Any:
        db = open_database(settings.database_url)
        try:
            async with db.unit() as uow:
                return await work(uow)
        finally:
            await db.close()

    return asyncio.run(main())


# `make test` runs the suite twice: on SQLite files, then with GRANTLY_TEST_DATABASE set to the
# PostgreSQL server this machine runs, each test in a database of its own.
TEST_DATABASE = os.environ.get("GRANTLY_TEST_DATABASE", "sqlite")
ON_POSTGRESQL = TEST_DATABASE.startswith("postgresql")


def _pg_url(name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(TEST_DATABASE).set(database=name).render_as_string(hide_password=False)


def _pg_admin(*statements: str) -> None:
    import asyncpg

    async def main() -> None:
        connection = await asyncpg.connect(_pg_url("postgres").replace("postgresql", "postgres", 1))
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(main())


def run_sql(url: str, statements: list[str]) -> list[list[tuple[object, ...]]]:
    """Raw SQL on a database by URL (migration tests: rows made before a revision), in one
    transaction; each statement's rows."""

    async def main() -> list[list[tuple[object, ...]]]:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                results = []
                for statement in statements:
                    result = await connection.execute(text(statement))
                    results.append([tuple(r) for r in result] if result.returns_rows else [])
                return results
        finally:
            await engine.dispose()

    return asyncio.run(main())


def fresh_database_name() -> str:
    return f"grantly_test_{uuid.uuid4().hex[:16]}"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    database_url = (
        _pg_url(fresh_database_name()) if ON_POSTGRESQL else f"sqlite:///{tmp_path / 'grantly.db'}"
    )
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": tmp_path / "data",
        "secret_key": "test-secret-key-not-for-production",
        "env": "test",
    }
    values.update(overrides)
    return Settings(**values)


def seed(settings: Settings) -> World:
    migrate.upgrade(settings.async_database_url)

    async def work(connection: Any) -> World:
        accounts = connection.accounts
        now = int(time.time())
        company_a = await accounts.create_company("Acme", now)
        company_b = await accounts.create_company("Globex", now)
        people = []
        for email, company, is_admin in (
            ("admin@acme.example", company_a, True),
            ("employee@acme.example", company_a, False),
            ("admin@globex.example", company_b, True),
        ):
            user = await accounts.create_user(
                company_id=company.id,
                email=email,
                name=email.split("@")[0],
                password_hash=hash_password(PASSWORD),
                admin=is_admin,
                now=now,
            )
            people.append(Person(user.id, email, PASSWORD, company.id, is_admin))
        clients = []
        for company in (company_a, company_b):
            draft = validate(
                name=f"{company.name} integration",
                redirect_uris=[REDIRECT_URI, "http://127.0.0.1:8765/callback"],
                confidential=True,
                scopes=["read", "write"],
                server_scopes=("read", "write"),
            )
            created = await admin.create_application(connection, company.id, draft, now)
            clients.append(
                Client(
                    created.application.id,
                    created.application.client_id,
                    created.client_secret,
                    list(created.application.redirect_uris),
                    company.id,
                )
            )
        return World(
            settings,
            company_a.id,
            company_b.id,
            people[0],
            people[1],
            people[2],
            clients[0],
            clients[1],
        )

    return run_db(settings, work)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def _database_name(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return str(make_url(settings.database_url).database)


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, World]]:
    """Migrating and hashing passwords takes a while: do it once, then copy the database
    (a file on SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL)."""
    folder = tmp_path_factory.mktemp("template")
    settings = make_settings(folder)
    if ON_POSTGRESQL:
        _pg_admin(f'CREATE DATABASE "{_database_name(settings)}"')
    try:
        yield folder / "grantly.db", seed(settings)
    finally:
        if ON_POSTGRESQL:
            _pg_admin(f'DROP DATABASE IF EXISTS "{_database_name(settings)}" WITH (FORCE)')


def copy_world(template: tuple[Path, World], settings: Settings) -> World:
    source, world = template
    if ON_POSTGRESQL:
        _pg_admin(
            f'CREATE DATABASE "{_database_name(settings)}" '
            f'TEMPLATE "{_database_name(world.settings)}"'
        )
    else:
        shutil.copyfile(source, Path(settings.database_url.removeprefix("sqlite:///")))
    return dataclasses.replace(world, settings=settings)


def drop_world(settings: Settings) -> None:
    if ON_POSTGRESQL:
        _pg_admin(f'DROP DATABASE IF EXISTS "{_database_name(settings)}" WITH (FORCE)')


@pytest.fixture
def world(settings: Settings, seeded_template: tuple[Path, World]) -> Iterator[World]:
    copied = copy_world(seeded_template, settings)
    try:
        yield copied
    finally:
        drop_world(settings)


def dump_database(settings: Settings) -> str:
    """Every row of every table, as text: what someone who copied the database would see."""
    from sqlalchemy import select

    from grantly.store.tables import metadata

    async def work(connection: Any) -> str:
        lines = []
        for table in metadata.sorted_tables:
            for row in await connection.tx.rows(select(table)):
                lines.append(f"{table.name}: {tuple(row)!r}")
        return "\n".join(lines)

    return str(run_db(settings, work))


def count_rows(settings: Settings, table: str) -> int:
    from sqlalchemy import func, select

    from grantly.store.tables import metadata

    async def work(connection: Any) -> int:
        return int(
            await connection.tx.scalar(select(func.count()).select_from(metadata.tables[table]))
        )

    return int(run_db(settings, work))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(int(time.time()))


@pytest.fixture
def client(settings: Settings, world: World, clock: FrozenClock) -> Iterator[TestClient]:
    app = create_app(settings, clock=clock)
    with TestClient(
        app, base_url="http://127.0.0.1:8000", follow_redirects=False, client=("127.0.0.1", 50000)
    ) as test_client:
        yield test_client


# --- driving the browser side like a person ----------------------------------------------

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def csrf_of(page: str) -> str:
    match = _CSRF.search(page)
    assert match, "no CSRF token on the page"
    return html.unescape(match.group(1))


def hidden_fields(page: str) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in _HIDDEN.findall(page)}


def sign_in(http: TestClient | httpx.Client, person: Person) -> None:
    page = http.get("/login")
    response = http.post(
        "/login",
        data={
            "email": person.email,
            "password": person.password,
            "csrf_token": csrf_of(page.text),
            "next": "/",
        },
    )
    assert response.status_code == 303, response.text


def consent(
    http: TestClient | httpx.Client, params: dict[str, str], decision: str = "allow"
) -> httpx.Response:
    """GET the authorize URL (already signed in), then press Allow or Deny."""
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    return http.post("/oauth/authorize", data={**hidden_fields(page.text), "decision": decision})


def callback_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return {k: v[0] for k, v in query.items()}


def authorize_params(app: Client, **extra: str) -> dict[str, str]:
    params = {"client_id": app.client_id, "redirect_uri": REDIRECT_URI, "response_type": "code"}
    params.update(extra)
    return params


def grant_as(http: TestClient, world: World, person: Person, **extra: str) -> dict[str, Any]:
    """Sign in as ``person`` (alone in this client), allow ``world.app``, exchange the code:
    the token response of a grant that works."""
    http.cookies.clear()
    sign_in(http, person)
    code = callback_params(consent(http, authorize_params(world.app, **extra)))["code"]
    response = exchange(http, world.app, code)
    assert response.status_code == 200, response.text
    return dict(response.json())


def obtain_code(http: TestClient, world: World, person: Person | None = None, **extra: str) -> str:
    sign_in(http, person or world.admin)
    params = callback_params(consent(http, authorize_params(world.app, **extra)))
    return params["code"]


def exchange(http: TestClient, app: Client, code: str, **extra: str) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": app.client_id,
        "client_secret": app.client_secret or "",
    }
    data.update(extra)
    return http.post("/oauth/token", data={k: v for k, v in data.items() if v != ""})


# --- a real `grantly serve` process --------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    world: World
    process: subprocess.Popen[bytes]
    log_path: Path

    def grantly(self, *args: str) -> dict[str, Any]:
        """Run the `grantly` CLI against this server's database; returns its --json output."""
        out = subprocess.run(
            [sys.executable, "-m", "grantly.cli", *args, "--json"],
            env=server_env(self.world.settings, self.url),
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout)


def server_env(settings: Settings, issuer: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "GRANTLY_DATABASE_URL": settings.database_url,
            "GRANTLY_DATA_DIR": str(settings.data_dir),
            "GRANTLY_SECRET_KEY": settings.secret_key or "",
            "GRANTLY_ISSUER": issuer,
            "GRANTLY_ENV": "test",
        }
    )
    return env


def start_server(settings: Settings, url: str, log_path: Path) -> subprocess.Popen[bytes]:
    """`grantly serve` on the URL's port, once it answers /healthz."""
    port = url.rsplit(":", 1)[1]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "grantly.cli", "serve", "--port", port],
            env=server_env(settings, url),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(process)
            raise RuntimeError("grantly serve did not start:\n" + log_path.read_text())
        time.sleep(0.1)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def live_server(tmp_path: Path, seeded_template: tuple[Path, World]) -> Iterator[LiveServer]:
    yield from serve_world(tmp_path, seeded_template)


def serve_world(tmp_path: Path, seeded_template: tuple[Path, World]) -> Iterator[LiveServer]:
    """A copy of the seeded world served by `grantly serve` (the process's environment is
    this one's, with the world's settings), stopped and dropped afterwards."""
    url = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(tmp_path, issuer=url)
    world = copy_world(seeded_template, settings)
    log_path = tmp_path / "server.log"
    try:
        process = start_server(settings, url, log_path)
        try:
            yield LiveServer(url, world, process, log_path)
        finally:
            stop_server(process)
    finally:
        drop_world(settings)


@pytest.fixture
def two_servers(
    tmp_path: Path, seeded_template: tuple[Path, World]
) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two `grantly serve` processes on one database, as two hosts behind a load balancer."""
    urls = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    settings = make_settings(tmp_path, issuer=urls[0])
    world = copy_world(seeded_template, settings)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for index, url in enumerate(urls):
            processes.append(start_server(settings, url, tmp_path / f"server{index}.log"))
        yield tuple(  # type: ignore[misc]
            LiveServer(url, world, process, tmp_path / f"server{index}.log")
            for index, (url, process) in enumerate(zip(urls, processes, strict=True))
        )
    finally:
        for process in processes:
            stop_server(process)
        drop_world(settings)


def authorize_url(base: str, app: Client, **extra: str) -> str:
    return f"{base}/oauth/authorize?{urlencode(authorize_params(app, **extra))}"
