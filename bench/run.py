"""`make bench`: Grantly's throughput and latency per operation, on SQLite and PostgreSQL, and
optionally node oidc-provider's, measured the same way with wrk on this machine.

For each backend: a fresh database, a company, an admin, an employee and a confidential
application seeded with the CLI, `grantly serve --workers 2` (GRANTLY_ENV=development, log
level warning), inputs minted with `grantly dev mint` right before each repetition, then
`wrk -t1 -c32 -d10s` after a warm-up, three repetitions, the median reported. Only loopback
addresses receive traffic. Writes BENCHMARKS.md, bench/results.json and bench/benchmarks.png.

    python bench/run.py [--quick] [--ops noop,token_code] [--backends sqlite] [--with-peer]
                        [--rows 1000000] [--json]
    python bench/run.py --report [rows-run.json]   # re-render BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "wrk.lua"
GRANTLY = Path(sys.executable).parent / "grantly"
HOST = "127.0.0.1"  # only loopback addresses receive traffic
REDIRECT_URI = "http://127.0.0.1:9/callback"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
# Grantly reaches a PostgreSQL on the same machine over its Unix socket when there is one, as a
# deployment on one host would: TCP over loopback cost a third more per request (profiled).
POSTGRES_SOCKET_DIR = Path("/var/run/postgresql")


def postgres_url(database: str) -> str:
    if (POSTGRES_SOCKET_DIR / ".s.PGSQL.5432").exists():
        return f"postgresql://postgres@/{database}?host={POSTGRES_SOCKET_DIR}"
    return f"postgresql://postgres@127.0.0.1:5432/{database}"


POSTGRES_DB = "grantly_bench"
PASSWORD = "bench-password-0123"

OPERATIONS = (
    "noop",
    "token_code",
    "token_refresh",
    "introspect",
    "resource",
    "authorize",
    # Issue 16: a code exchanged for an RFC 9068 JWT (signed), a DPoP-bound token at the API
    # (a fresh proof per request, verified, its jti remembered): Grantly only.
    "token_code_jwt",
    "resource_dpop",
)
GRANTLY_ONLY = ("token_code_jwt", "resource_dpop")
# Targets without a consent page to render.
FLOORLESS = ("oidc-provider", "floor-sqlite", "floor-postgresql")
BACKENDS = ("sqlite", "postgresql")
# What each operation consumes: a fresh value per request, or nothing.
CONSUMES = {
    "token_code": "code",
    "token_refresh": "refresh_token",
    "token_code_jwt": "jwt_code",
    "resource_dpop": "dpop_proof",
}


@dataclass
class Options:
    ops: list[str]
    backends: list[str]
    duration: int
    warmup: int
    repetitions: int
    connections: int
    threads: int
    with_peer: bool
    as_json: bool
    write: bool
    port: int
    rows: int = 0
    keep: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class Target:
    """A running server and how to send each operation to it."""

    name: str
    base: str
    basic: str  # the Authorization header value for client_secret_basic
    access_token: str
    mint: Any  # (kind, count, path) -> None
    cookie: str | None = None
    authorize_query: str | None = None
    paths: dict[str, str] = field(default_factory=dict)
    version: str | None = None
    database_url: str | None = None  # Grantly's: the floor probe runs on the same database
    basic_jwt: str | None = None  # the JWT application's client_secret_basic
    dpop_token: str | None = None  # an access token bound to the bench's DPoP key


def log(options: Options, message: str) -> None:
    if not options.as_json:
        print(message, flush=True)
    else:
        print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before serving")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- wrk -----------------------------------------------------------------------------------


def wrk(options: Options, target: Target, op: str, seconds: int, values: Path | None) -> dict:
    headers: list[str] = []
    method, path, body = "GET", "/healthz", ""
    if op in ("token_code", "token_refresh", "introspect", "token_code_jwt"):
        method = "POST"
        basic = target.basic_jwt if op == "token_code_jwt" else target.basic
        headers += [
            f"Authorization: {basic}",
            "Content-Type: application/x-www-form-urlencoded",
        ]
        default = "/oauth/introspect" if op == "introspect" else "/oauth/token"
        path = target.paths.get(op, default)
        if op in ("token_code", "token_code_jwt"):
            body = "grant_type=authorization_code&code={value}&redirect_uri=" + quote(
                REDIRECT_URI, safe=""
            )
        elif op == "token_refresh":
            body = "grant_type=refresh_token&refresh_token={value}"
        else:
            body = "token=" + target.access_token
    elif op == "resource":
        path = target.paths.get(op, "/api/v1/me")
        headers.append(f"Authorization: Bearer {target.access_token}")
    elif op == "resource_dpop":
        path = "/api/v1/me"
        headers += [f"Authorization: DPoP {target.dpop_token}", "DPoP: {value}"]
    elif op == "authorize":
        assert target.cookie and target.authorize_query
        path = "/oauth/authorize?" + target.authorize_query
        headers.append(f"Cookie: {target.cookie}")
    elif op == "noop":
        path = target.paths.get(op, "/healthz")
    env = {
        **os.environ,
        "BENCH_METHOD": method,
        "BENCH_PATH": path,
        "BENCH_BODY": body,
        "BENCH_VALUES": str(values) if values else "",
        "BENCH_HEADERS": "\n".join(headers),
        "BENCH_THREADS": str(options.threads),
    }
    command = [
        "wrk",
        f"-t{options.threads}",
        f"-c{options.connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(LUA),
        target.base,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"^BENCH_JSON (.*)$", done.stdout, re.M)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    result = json.loads(match.group(1))
    result["error_count"] = sum(result["errors"].values())
    return result


def run_operation(options: Options, target: Target, op: str, workdir: Path) -> dict:
    """Warm up, then the repetitions; every value consumed is minted fresh for its run."""
    kind = CONSUMES.get(op)

    def values_for(count: int, label: str) -> Path | None:
        if kind is None:
            return None
        path = workdir / f"{target.name}-{op}-{label}.txt"
        started = time.monotonic()
        target.mint(kind, count, path)
        log(options, f"    minted {count} {kind}s in {time.monotonic() - started:.1f} s")
        return path

    # The warm-up also estimates the rate, to mint enough values for each repetition.
    warm_count = 3000 * options.warmup
    warm = wrk(options, target, op, options.warmup, values_for(warm_count, "warmup"))
    rate = warm["rps"]
    if kind is not None and warm["exhausted"]:
        rate = max(rate, 3 * warm_count / options.warmup)
    runs = []
    reruns = 0
    for rep in range(options.repetitions):
        values = values_for(math.ceil(rate * options.duration * 1.6) + 2000, f"run{rep}")
        result = wrk(options, target, op, options.duration, values)
        if kind is not None and result["exhausted"]:
            # Ran out: mint for the rate just seen and run again (once), rather than reuse.
            log(options, f"    {op} run {rep + 1} ran out of values: minting more, running again")
            reruns += 1
            rate = result["requests"] / result["seconds"] * 1.5
            values = values_for(math.ceil(rate * options.duration * 1.6) + 2000, f"run{rep}b")
            result = wrk(options, target, op, options.duration, values)
        runs.append(result)
        status = "INVALID" if result["error_count"] else "ok"
        log(
            options,
            f"    {op} run {rep + 1}: {result['rps']:.0f} req/s, p50 "
            f"{result['p50_us'] / 1000:.1f} ms, p99 {result['p99_us'] / 1000:.1f} ms, "
            f"errors {result['error_count']} ({status})",
        )
        if values:
            values.unlink(missing_ok=True)
    median = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    return {
        "rps": median["rps"],
        "p50_ms": median["p50_us"] / 1000,
        "p99_ms": median["p99_us"] / 1000,
        "errors": sum(r["error_count"] for r in runs),
        "exhausted": sum(r["exhausted"] for r in runs),
        "reruns_after_running_out": reruns,
        "valid": all(r["error_count"] == 0 for r in runs),
        "runs": runs,
        "rps_all": [r["rps"] for r in runs],
        "rps_median": statistics.median(r["rps"] for r in runs),
    }


# --- Grantly ---------------------------------------------------------------------------------


def grantly(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(GRANTLY), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"grantly {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout


def grantly_json(env: dict[str, str], *args: str) -> dict:
    return json.loads(grantly(env, *args, "--json").strip().splitlines()[-1])


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", POSTGRES_ADMIN, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def grantly_server(
    options: Options, backend: str, workdir: Path, rows: int = 0
) -> Iterator[Target]:
    """Grantly on a fresh database; with ``rows``, that many more rows in each token table."""
    label = f"{backend}-{rows}rows" if rows else backend
    database_name = f"{POSTGRES_DB}_{rows}rows" if rows else POSTGRES_DB
    port = options.port or free_port()
    base = f"http://{HOST}:{port}"
    if backend == "sqlite":
        url = f"sqlite:///{workdir / f'{label}.db'}"
    else:
        psql(f"DROP DATABASE IF EXISTS {database_name} WITH (FORCE)")
        psql(f"CREATE DATABASE {database_name}")
        url = postgres_url(database_name)
    env = {
        **os.environ,
        "GRANTLY_DATABASE_URL": url,
        "GRANTLY_DATA_DIR": str(workdir / f"data-{label}"),
        "GRANTLY_ENV": "development",
        "GRANTLY_LOG_LEVEL": "warning",
        "GRANTLY_ISSUER": base,
        # Two PostgreSQL targets up at once (--rows) would hold more connections than the
        # server's max_connections (100): each keeps half its usual pools.
        **({"GRANTLY_DATABASE_POOL_SIZE": "8"} if options.rows and backend != "sqlite" else {}),
    }
    process = None
    try:
        company = grantly_json(env, "companies", "create", "--name", "Bench Co")
        people = {}
        for role, flag in (("admin", ["--admin"]), ("employee", [])):
            email = f"{role}@bench.example"
            grantly_json(
                env, "users", "create", "--company", str(company["id"]), "--email", email,
                "--password", PASSWORD, *flag,
            )  # fmt: skip
            people[role] = email
        app = grantly_json(
            env, "apps", "create", "--company", str(company["id"]), "--name", "Bench client",
            "--redirect-uri", REDIRECT_URI,
        )  # fmt: skip
        jwt_app = grantly_json(
            env, "apps", "create", "--company", str(company["id"]), "--name", "Bench JWT client",
            "--redirect-uri", REDIRECT_URI, "--access-token-format", "jwt",
        )  # fmt: skip
        dpop_key = ECKey.generate_key("P-256")
        bound: dict[str, str] = {}
        if rows:
            started = time.monotonic()
            add_token_rows(url, company["id"], app["id"], rows)
            log(
                options,
                f"  added {rows} rows to each token table in {time.monotonic() - started:.0f} s",
            )

        def mint(kind: str, count: int, path: Path) -> None:
            if kind == "dpop_proof":
                # One proof per request, made now: each is accepted for a minute after its iat.
                with path.open("w") as out:
                    for _ in range(count):
                        out.write(dpop_proof(dpop_key, base + "/api/v1/me", bound["token"]) + "\n")
                return
            client = jwt_app if kind == "jwt_code" else app
            with path.open("w") as out:
                subprocess.run(
                    [
                        str(GRANTLY),
                        "dev",
                        "mint",
                        "--client-id",
                        client["client_id"],
                        "--user-email",
                        people["employee"],
                        "--redirect-uri",
                        REDIRECT_URI,
                        "--kind",
                        "code" if kind == "jwt_code" else kind,
                        "--count",
                        str(count),
                        "--scope",
                        "read write",
                    ],
                    env=env,
                    stdout=out,
                    stderr=subprocess.DEVNULL,
                    check=True,
                )

        log_file = (workdir / f"server-{label}.log").open("wb")
        process = subprocess.Popen(
            [str(GRANTLY), "serve", "--host", HOST, "--port", str(port), "--workers", "2"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until_up(base + "/healthz", process)
        access_path = workdir / "access.txt"
        mint("access_token", 1, access_path)
        access_token = access_path.read_text().split()[0]
        query = urlencode(
            {
                "client_id": app["client_id"],
                "redirect_uri": REDIRECT_URI,
                "response_type": "code",
                "scope": "read write",
                "state": "bench",
            }
        )
        cookie = sign_in(base, people["employee"], query)
        secret = f"{app['client_id']}:{app['client_secret']}".encode()
        jwt_secret = f"{jwt_app['client_id']}:{jwt_app['client_secret']}".encode()
        basic = "Basic " + base64.b64encode(secret).decode()
        bound["token"] = dpop_bound_token(base, basic, mint, dpop_key)
        target = Target(
            name=f"grantly-{label}",
            base=base,
            basic=basic,
            access_token=access_token,
            mint=mint,
            cookie=cookie,
            authorize_query=query,
            database_url=url,
            basic_jwt="Basic " + base64.b64encode(jwt_secret).decode(),
            dpop_token=bound["token"],
        )
        check(target)
        yield target
    finally:
        if process is not None:
            stop(process)
        if backend == "postgresql":
            with contextlib.suppress(subprocess.CalledProcessError):
                psql(f"DROP DATABASE IF EXISTS {database_name} WITH (FORCE)")


@contextlib.contextmanager
def floor_server(options: Options, grantly_target: Target, workdir: Path) -> Iterator[Target]:
    """The floor probe (bench/floor.py) on the database of ``grantly_target``: the same stack,
    tables and writes, no OAuth logic. Its inputs are minted as Grantly's are."""
    port = free_port()
    base = f"http://{HOST}:{port}"
    label = grantly_target.name.removeprefix("grantly-")
    log_file = (workdir / f"server-floor-{label}.log").open("wb")
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH), "--factory"]
    command += ["floor:create_app", "--host", HOST, "--port", str(port), "--workers", "2"]
    command += ["--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(
        command,
        env={**os.environ, "FLOOR_DATABASE_URL": grantly_target.database_url or ""},
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_up(base + "/healthz", process)
        target = Target(
            name=f"floor-{label}",
            base=base,
            basic=grantly_target.basic,
            access_token=grantly_target.access_token,
            mint=grantly_target.mint,
        )
        check(target)
        yield target
    finally:
        stop(process)


def add_token_rows(url: str, company_id: int, app_id: int, rows: int) -> None:
    """``rows`` more access tokens and refresh tokens: company tokens of random digests, written
    with one SQL statement per table (minting a million through the protocol core would take
    minutes). They are never presented; they only make the tables and their indexes large."""
    now = int(time.time())
    columns = (
        "digest, application_id, owner_type, company_id, user_id, scopes, family_id, "
        "created_at, expires_at"
    )
    values = f"{app_id}, 'company', {company_id}, NULL, 'read', -i, {now}, {now + 86400}"
    for table in ("access_tokens", "refresh_tokens"):
        if url.startswith("sqlite"):
            database = sqlite3.connect(url.removeprefix("sqlite:///"))
            with database:
                database.execute(
                    f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "  # noqa: S608 (our own integers)
                    f"WHERE i < {rows}) INSERT INTO {table} ({columns}) "
                    f"SELECT lower(hex(randomblob(32))), {values} FROM n"
                )
            database.execute("ANALYZE")
            database.close()
        else:
            subprocess.run(
                [
                    "psql", url,
                    "-v", "ON_ERROR_STOP=1", "-q", "-c",
                    f"INSERT INTO {table} ({columns}) SELECT md5(random()::text) || "  # noqa: S608
                    f"md5(random()::text), {values} FROM generate_series(1, {rows}) AS i; "
                    f"ANALYZE {table}",
                ],
                check=True,
                capture_output=True,
            )  # fmt: skip


def sign_in(base: str, email: str, authorize_query: str) -> str:
    """Sign in like a person (the login form and its CSRF token); return the Cookie header."""
    with httpx.Client(base_url=base, follow_redirects=False) as http:
        page = http.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, "no CSRF token on /login"
        answer = http.post(
            "/login",
            data={"email": email, "password": PASSWORD, "csrf_token": token.group(1), "next": "/"},
        )
        assert answer.status_code == 303, answer.text
        consent = http.get("/oauth/authorize?" + authorize_query)
        assert consent.status_code == 200 and "Allow" in consent.text, consent.status_code
        return "; ".join(f"{name}={value}" for name, value in http.cookies.items())


def dpop_proof(key: ECKey, url: str, token: str | None = None, method: str = "GET") -> str:
    """An RFC 9449 §4.2 proof, as a client makes one per request."""
    claims: dict[str, Any] = {
        "jti": secrets.token_urlsafe(12),
        "htm": method,
        "htu": url,
        "iat": int(time.time()),
    }
    if token is not None:
        digest = hashlib.sha256(token.encode()).digest()
        claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    return jwt.encode(header, claims, key)


def dpop_bound_token(base: str, basic: str, mint: Any, key: ECKey) -> str:
    """An access token bound to ``key``: a code exchanged with a proof (RFC 9449 §5)."""
    codes = Path(tempfile.mkdtemp(prefix="grantly-bench-dpop-")) / "code.txt"
    mint("code", 1, codes)
    response = httpx.post(
        base + "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": codes.read_text().split()[0],
            "redirect_uri": REDIRECT_URI,
        },
        headers={
            "Authorization": basic,
            "DPoP": dpop_proof(key, base + "/oauth/token", None, "POST"),
        },
    )
    shutil.rmtree(codes.parent, ignore_errors=True)
    assert response.status_code == 200 and response.json()["token_type"] == "DPoP", response.text
    return str(response.json()["access_token"])


def check(target: Target) -> None:
    """A request of each kind by hand (a Bearer call, an introspection, a code exchange), so
    that a broken setup fails loudly, not as errors."""
    with httpx.Client(base_url=target.base) as http:
        me = http.get(
            target.paths.get("resource", "/api/v1/me"),
            headers={"Authorization": f"Bearer {target.access_token}"},
        )
        assert me.status_code == 200, me.text
        facts = http.post(
            target.paths.get("introspect", "/oauth/introspect"),
            data={"token": target.access_token},
            headers={"Authorization": target.basic},
        )
        assert facts.status_code == 200 and facts.json()["active"], facts.text
        codes = Path(tempfile.mkdtemp(prefix="grantly-bench-check-")) / "code.txt"
        target.mint("code", 1, codes)
        exchanged = http.post(
            target.paths.get("token_code", "/oauth/token"),
            data={
                "grant_type": "authorization_code",
                "code": codes.read_text().split()[0],
                "redirect_uri": REDIRECT_URI,
            },
            headers={"Authorization": target.basic},
        )
        assert exchanged.status_code == 200, exchanged.text
        shutil.rmtree(codes.parent, ignore_errors=True)


# --- node oidc-provider ----------------------------------------------------------------------


@contextlib.contextmanager
def peer_server(options: Options, workdir: Path) -> Iterator[Target]:
    folder = BENCH / "oidc-provider"
    if not (folder / "node_modules" / "oidc-provider").exists():
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=folder, check=True
        )
    port = options.port or free_port()
    base = f"http://{HOST}:{port}"
    files = workdir / "peer"
    files.mkdir(exist_ok=True)
    log_file = (workdir / "server-peer.log").open("wb")
    process = subprocess.Popen(
        ["node", "server.js"],
        cwd=folder,
        env={**os.environ, "PORT": str(port), "HOST": HOST, "NODE_ENV": "production"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log_file,
        start_new_session=True,
        text=True,
    )
    try:
        ready = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        package = folder / "node_modules" / "oidc-provider" / "package.json"
        peer_version = json.loads(package.read_text())["version"]

        def mint(kind: str, count: int, path: Path) -> None:
            # The server mints with its own models (AuthorizationCode / RefreshToken .save()).
            process.stdin.write(
                json.dumps({"kind": kind, "count": count, "path": str(path)}) + "\n"
            )  # type: ignore[union-attr]
            process.stdin.flush()  # type: ignore[union-attr]
            line = process.stdout.readline()  # type: ignore[union-attr]
            while line and not line.startswith("{"):  # the provider's own notices
                line = process.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise RuntimeError(
                    f"oidc-provider exited ({process.wait()}); see {workdir / 'server-peer.log'}"
                )
            try:
                answer = json.loads(line)
            except ValueError:
                raise RuntimeError(f"oidc-provider answered {line!r}") from None
            assert answer.get("ok"), answer

        access_path = workdir / "peer-access.txt"
        mint("access_token", 1, access_path)
        target = Target(
            name="oidc-provider",
            base=base,
            basic="Basic "
            + base64.b64encode(f"{ready['client_id']}:{ready['client_secret']}".encode()).decode(),
            access_token=access_path.read_text().split()[0],
            mint=mint,
            version=peer_version,
            paths={
                "noop": "/healthz",
                "token_code": "/token",
                "token_refresh": "/token",
                "introspect": "/token/introspection",
                "resource": "/me",
            },
        )
        check(target)
        yield target
    finally:
        stop(process)


# --- report ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.0f} GB"
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    node = shutil.which("node")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "wrk": (wrk_version.stdout + wrk_version.stderr).split("Copyright")[0].strip(),
        "node": subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
        if node
        else None,
        "load_average_at_start": os.getloadavg(),
    }


def source_state() -> dict[str, Any]:
    """The commit measured, and whether tracked files differed from it when the run began
    (other people may edit the work tree while the benchmark runs)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--untracked-files=no").splitlines()
    return {"commit": git("rev-parse", "--short", "HEAD"), "modified_files": changed}


def write_report(results: dict) -> None:
    (BENCH / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    chart = draw_chart(results)
    opts = results["options"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured {results['date']} with `make bench` ({results['elapsed_s']:.0f} s in all; "
        + ", ".join(f"{n} {s} s" for n, s in results.get("elapsed_per_target_s", {}).items())
        + "). Raw figures: [bench/results.json](bench/results.json).",
        "",
        "## How to run",
        "",
        "```sh",
        "make bench                                # SQLite and PostgreSQL, every operation",
        'make bench BENCH_ARGS="--with-peer"       # also node oidc-provider (opt-in: the whole',
        "                                          # run then takes over 10 minutes)",
        'make bench BENCH_ARGS="--quick"           # a smoke run: 2 s per run, one repetition',
        'make bench BENCH_ARGS="--ops noop,resource --backends sqlite --json"',
        "```",
        "",
        "`make bench` installs wrk (Debian's package) and the `bench` extra (httpx, matplotlib), "
        "then runs `bench/run.py`. Per backend it creates a fresh database (a SQLite file; "
        f"PostgreSQL database `{POSTGRES_DB}`, reached over the Unix socket in "
        f"`{POSTGRES_SOCKET_DIR}` when there is one, else 127.0.0.1:5432, dropped afterwards), "
        "seeds a "
        "company, an admin, an employee and a confidential application with the CLI, and "
        "starts `grantly serve --workers 2` with `GRANTLY_ENV=development` and "
        "`GRANTLY_LOG_LEVEL=warning`. Inputs are minted with `grantly dev mint` (through the "
        "protocol core, as the browser flow would) right before each repetition, enough for the "
        "rate seen in the warm-up; a code or refresh token is never sent twice (wrk.lua counts "
        "the requests of a run that ran out as errors, and the run is then repeated with more "
        "values). Each operation: a "
        f"{opts['warmup']} s warm-up, then {opts['repetitions']} run(s) of "
        f"`wrk -t{opts['threads']} -c{opts['connections']} -d{opts['duration']}s`; the table "
        "shows the run with the median requests/s. Only 127.0.0.1 receives traffic.",
        "",
        "| operation | request |",
        "|---|---|",
        "| noop | `GET /healthz`: the stack's own limit |",
        "| token_code | `POST /oauth/token` authorization_code, a different code each request, "
        "client_secret_basic |",
        "| token_refresh | `POST /oauth/token` refresh_token, a different refresh token each "
        "request, client_secret_basic |",
        "| introspect | `POST /oauth/introspect` of an access token, client_secret_basic |",
        "| resource | `GET /api/v1/me` with a Bearer token (oidc-provider: `GET /me`, a route "
        "of server.js that validates the token with `provider.AccessToken.find` and its grant) |",
        "| authorize | `GET /oauth/authorize?…` rendering the consent page for a signed-in user |",
        "| token_code_jwt | as token_code, for an application with `--access-token-format jwt`: "
        "the access token is an RFC 9068 JWT signed with the active ES256 key (Grantly only) |",
        "| resource_dpop | `GET /api/v1/me` with a DPoP-bound token: `Authorization: DPoP`, a "
        "fresh ES256 proof per request (made before the run), verified and its jti remembered "
        "(the database: no Redis configured) (Grantly only) |",
        "",
        "Errors are non-2xx/3xx answers and socket errors over all runs of an operation; an "
        "operation with any error is marked **INVALID**; wrk gives up on a request after 2 s "
        '(a socket timeout, an error). "x noop" is the operation\'s requests/s over the same '
        "server's noop. p50 and p99 are wrk's latency distribution of the median run.",
        "",
        "## Machine",
        "",
    ]
    m = results["machine"]
    source = results.get("source")
    if source:
        modified = source["modified_files"]
        lines += [
            f"Grantly at commit `{source['commit']}`"
            + (
                f", with {len(modified)} tracked file(s) modified in the work tree when the run "
                "began: " + ", ".join(f"`{f[3:]}`" for f in modified) + "."
                if modified
                else ", with no tracked file modified when the run began."
            ),
            "",
        ]
    load = ", ".join(f"{x:.2f}" for x in m["load_average_at_start"])
    lines += [
        f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory']}",
        f"- {m['os']}; Python {m['python']}; {m['wrk']}; node {m['node']}",
        f"- Load average when the run started: {load}."
        " This machine is shared (other people's test suites may run at the same time) and "
        "its speed drifts (up to 2x within an hour), so compare ratios measured in one run "
        "rather than absolute figures across runs.",
        "",
    ]
    targets = results["targets"]
    invalid: list[str] = []
    for name, ops in targets.items():
        lines += [
            f"## {name}",
            "",
            "| operation | requests/s | p50 ms | p99 ms | errors | x noop |",
        ]
        lines.append("|---|---:|---:|---:|---:|---:|")
        noop = ops.get("noop", {}).get("rps")
        for op, r in ops.items():
            ratio = f"{r['rps'] / noop:.2f}" if noop else "-"
            flag = "" if r["valid"] else " **INVALID**"
            if not r["valid"]:
                kinds: dict[str, int] = {}
                for run in r["runs"]:
                    for kind, n in run["errors"].items():
                        kinds[kind] = kinds.get(kind, 0) + n
                detail = ", ".join(f"{n} {k}" for k, n in kinds.items() if n)
                invalid.append(f"{name} {op}: {detail} (over {len(r['runs'])} runs)")
            lines.append(
                f"| {op} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                f"{r['errors']}{flag} | {ratio} |"
            )
        lines.append("")
    if invalid:
        lines += [
            "Errors of the INVALID operations (`timeout`: wrk waited 2 s without an answer; "
            "`status`: a 4xx/5xx answer):",
            "",
            *[f"- {line}" for line in invalid],
            "",
        ]
    floor_names = [n for n in targets if n.startswith("floor-")]
    if floor_names:
        backends = [n.removeprefix("floor-") for n in floor_names]
        lines += [
            "## Against the floor probe",
            "",
            "The floor (`bench/floor.py`) is the same stack with no OAuth logic: uvicorn with 2 "
            "workers and Starlette routes, on the same database as the Grantly target beside it "
            "(same tables, indexes and writes: the client looked up, the code or refresh token "
            "used with a conditional UPDATE ... RETURNING, the new tokens and the audit row, "
            "digests of fresh random values). On SQLite it runs Grantly's own store (group "
            "commit); on PostgreSQL each operation is one statement (data-modifying `WITH`s), "
            "one round trip. Ratios are Grantly's requests/s over the floor's, in the same run; "
            "the issue's target is 0.8 or more for every hot operation.",
            "",
            "| operation | "
            + " | ".join(f"floor {b} | grantly {b} | ratio" for b in backends)
            + " |",
            "|---|" + "---:|---:|---:|" * len(backends),
        ]
        for op in OPERATIONS:
            if op == "authorize":
                continue
            row = f"| {op} |"
            for b in backends:
                f, g = targets[f"floor-{b}"].get(op), targets.get(f"grantly-{b}", {}).get(op)
                if f is None or g is None:
                    row += " - | - | - |"
                else:
                    row += f" {f['rps']:,.0f} | {g['rps']:,.0f} | {g['rps'] / f['rps']:.2f} |"
            lines.append(row)
        lines.append("")
    if "oidc-provider" in targets:
        peer = targets["oidc-provider"]
        names = [n for n in targets if n != "oidc-provider"]
        lines += [
            "## Side by side with node oidc-provider",
            "",
            f"oidc-provider {results.get('peer_version', '9')} (one node process, an in-memory "
            "Map adapter: nothing on disk; codes, refresh tokens and access tokens minted "
            "in-process with its own models, one Grant each, `bench/oidc-provider/server.js`; "
            "scope `offline_access` without `openid`, so no ID token is signed, as Grantly signs "
            "none; refresh tokens rotate on every use, as Grantly's do). "
            "Ratios are Grantly's requests/s over oidc-provider's, measured in the same run.",
            "",
            "| operation | oidc-provider | " + " | ".join(f"{n} | ratio" for n in names) + " |",
            "|---|---:|" + "---:|---:|" * len(names),
        ]
        for op in OPERATIONS:
            if op not in peer and not any(op in targets[n] for n in names):
                continue
            p = peer.get(op)
            row = f"| {op} | {p['rps']:,.0f} |" if p else f"| {op} | - |"
            for n in names:
                g = targets[n].get(op)
                if g is None:
                    row += " - | - |"
                else:
                    ratio = f"{g['rps'] / p['rps']:.2f}" if p else "-"
                    row += f" {g['rps']:,.0f} | {ratio} |"
            lines.append(row)
        lines += [
            "",
            "authorize is not measured on oidc-provider: its consent is an interaction "
            "(a redirect to an interaction page that a signed-in session must complete), not "
            "one GET that renders a page, so no like-for-like request exists.",
            "",
        ]
    # A --rows run's figures: this run's own, or those of a separate run kept beside it.
    rows_run = results.get("rows_run") or (results if results.get("rows") else None)
    if rows_run:
        rows = rows_run["rows"]
        lines += [
            f"## Large tables ({rows:,} more rows in each token table)",
            "",
            f"`--rows {rows}`: each backend also ran on a database whose access_tokens and "
            f"refresh_tokens tables held {rows:,} more rows each (company tokens of random "
            "digests, inserted with SQL), measured right after the same operation on the "
            "ordinary database (on PostgreSQL both twins keep pools of 8, "
            "`GRANTLY_DATABASE_POOL_SIZE`, as two servers with the usual pools would exceed the "
            "server's max_connections). Every lookup is an index lookup, so the change should be "
            "noise; noop, which reads no table, shows how large the noise of these runs is.",
            "",
            f"Measured {rows_run['date']} ({rows_run['options']['repetitions']} run(s) of "
            f"{rows_run['options']['duration']} s per operation).",
            "",
            "| backend | operation | requests/s | with the rows | change |",
            "|---|---|---:|---:|---:|",
        ]
        for name, ops in rows_run["targets"].items():
            large = rows_run["targets"].get(f"{name}-{rows}rows")
            if large is None:
                continue
            for op, r in ops.items():
                if op in large:
                    change = large[op]["rps"] / r["rps"] - 1
                    lines.append(
                        f"| {name} | {op} | {r['rps']:,.0f} | {large[op]['rps']:,.0f} | "
                        f"{change:+.0%} |"
                    )
        lines.append("")
    if chart:
        lines += ["## Chart", "", f"![requests per second]({chart})", ""]
    if results.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in results["notes"]], ""]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))


def draw_chart(results: dict) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    targets = results["targets"]
    ops = [op for op in OPERATIONS if any(op in t for t in targets.values())]
    width = 0.8 / max(len(targets), 1)
    figure, axes = plt.subplots(figsize=(10, 5))
    for i, (name, values) in enumerate(targets.items()):
        heights = [values[op]["rps"] if op in values else 0 for op in ops]
        bars = axes.bar([x + i * width for x in range(len(ops))], heights, width, label=name)
        axes.bar_label(bars, labels=[f"{h:,.0f}" if h else "" for h in heights], fontsize=7)
    axes.set_xticks([x + width * (len(targets) - 1) / 2 for x in range(len(ops))], ops)
    axes.set_ylabel("requests/s (median run)")
    opts = results["options"]
    axes.set_title(
        f"wrk -t{opts['threads']} -c{opts['connections']} -d{opts['duration']}s, "
        f"{results['date'][:10]}"
    )
    axes.legend()
    figure.tight_layout()
    path = BENCH / "benchmarks.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return "bench/benchmarks.png"


# --- main ------------------------------------------------------------------------------------


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", default=",".join(OPERATIONS), help="comma-separated operations")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="sqlite,postgresql")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up (2)")
    parser.add_argument("--repetitions", type=int, default=3, help="runs per operation (3)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 s runs, 1 s warm-up, one repetition"
    )
    parser.add_argument(
        "--with-peer", action="store_true", help="also run node oidc-provider (bench/oidc-provider)"
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=0,
        help="extra rows in each token table before measuring (e.g. 1000000: index lookups "
        "must not slow down)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--note", action="append", default=[], help="a note for BENCHMARKS.md (repeatable)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (databases, server logs)"
    )
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write BENCHMARKS.md, bench/results.json and the chart (default: unless --quick, "
        "--ops or --backends narrow the run)",
    )
    args = parser.parse_args(argv)
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for value, allowed in ((ops, OPERATIONS), (backends, BACKENDS)):
        unknown = [v for v in value if v not in allowed]
        if unknown:
            parser.error(f"unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    if args.quick:
        args.duration, args.warmup, args.repetitions = 2, 1, 1
    full = not args.quick and set(ops) == set(OPERATIONS) and set(backends) == set(BACKENDS)
    if args.rows < 0:
        parser.error("--rows must be 0 or more")
    return Options(
        ops=ops,
        backends=backends,
        duration=args.duration,
        warmup=args.warmup,
        repetitions=args.repetitions,
        connections=args.connections,
        threads=args.threads,
        with_peer=args.with_peer,
        as_json=args.json,
        write=full if args.write is None else args.write,
        port=args.port,
        keep=args.keep,
        notes=args.note,
        rows=args.rows,
    )


def main(argv: list[str]) -> int:
    if argv[:1] == ["--report"]:  # re-render BENCHMARKS.md and the chart from results.json
        results = json.loads((BENCH / "results.json").read_text())
        if argv[1:2]:  # and a --rows run's JSON output, kept beside the main run's figures
            results["rows_run"] = json.loads(Path(argv[1]).read_text())
        write_report(results)
        return 0
    options = parse(argv)
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (`make bench` installs it: apt-get install wrk)")
        return 2
    started = time.monotonic()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "source": source_state(),
        "options": {
            k: getattr(options, k)
            for k in ("duration", "warmup", "repetitions", "connections", "threads")
        },
        "targets": {},
        "notes": list(options.notes),
    }
    if options.rows:
        results["rows"] = options.rows
    if (
        options.port
        and (len(options.backends) * (2 if options.rows else 1) + options.with_peer) > 1
    ):
        print("error: --port needs a single target (one backend, no peer)")
        return 2
    # With --rows, each backend runs twice: as usual, and with that many more rows in each
    # token table; the two are measured back to back (see below).
    plans: dict[str, tuple[str, int]] = {}
    for backend in options.backends:
        plans[f"grantly-{backend}"] = (backend, 0)
        if options.rows:
            plans[f"grantly-{backend}-{options.rows}rows"] = (backend, options.rows)
    names = list(plans)
    # The floor probe of each backend, on that backend's (ordinary) database.
    floors = {f"floor-{backend}": f"grantly-{backend}" for backend in options.backends}
    names += list(floors)
    if options.with_peer:
        names.append("oidc-provider")
    workdir = Path(tempfile.mkdtemp(prefix="grantly-bench-"))
    if options.keep:
        log(options, f"work directory (kept): {workdir}")
    try:
        # Every target is up at once (idle ones cost nothing), and each operation is measured on
        # all of them back to back: this machine's speed drifts by up to 2x within the hour, so
        # the comparison of targets is only as good as their measurements are close in time.
        with contextlib.ExitStack() as servers:
            targets = {}
            for name in names:
                log(options, f"== starting {name}")
                if name == "oidc-provider":
                    server = peer_server(options, workdir)
                elif name in floors:
                    server = floor_server(options, targets[floors[name]], workdir)
                else:
                    backend, rows = plans[name]
                    server = grantly_server(options, backend, workdir, rows)
                targets[name] = servers.enter_context(server)
                if targets[name].version:
                    results["peer_version"] = targets[name].version
                results["targets"][name] = {}
            for op in options.ops:
                for name, target in targets.items():
                    if name in FLOORLESS and op == "authorize":
                        continue  # the peer's consent is an interaction; the floor has none
                    if name in FLOORLESS and op in GRANTLY_ONLY:
                        continue
                    log(options, f"== {op} on {name}")
                    op_started = time.monotonic()
                    results["targets"][name][op] = run_operation(options, target, op, workdir)
                    elapsed = results.setdefault("elapsed_per_target_s", {})
                    elapsed[name] = round(elapsed.get(name, 0) + time.monotonic() - op_started)
    finally:
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_s"] = time.monotonic() - started
    if options.write:
        write_report(results)
        log(options, "wrote BENCHMARKS.md, bench/results.json, bench/benchmarks.png")
    if options.as_json:
        print(json.dumps(results, indent=2))
    else:
        for name, ops in results["targets"].items():
            noop = ops.get("noop", {}).get("rps")
            print(f"\n{name}")
            header = ("operation", "req/s", "p50 ms", "p99 ms", "errors", "x noop")
            print("  {:14} {:>9} {:>8} {:>8} {:>7} {:>7}".format(*header))
            for op, r in ops.items():
                ratio = f"{r['rps'] / noop:.2f}" if noop else "-"
                flag = "" if r["valid"] else "  INVALID"
                print(
                    f"  {op:14} {r['rps']:9.0f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} "
                    f"{r['errors']:7d} {ratio:>7}{flag}"
                )
        print(f"\n{results['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
