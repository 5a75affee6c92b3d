"""With PostgreSQL stopped, Grantly answers 503 in the right form and recovers by itself when
it returns; nothing a client received is lost. Runs its own PostgreSQL server (the machine's
binaries, a throwaway data directory, a free port) so that stopping it disturbs nothing else,
and so that it can ask for passwords (the machine's trusts every local connection).

The faults that need no server of its own (sessions terminated, the database dropped, the
connections exhausted, the login revoked) are tests/test_postgresql_faults.py's."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ON_POSTGRESQL, free_port
from tests.test_postgresql_faults import assert_down, assert_logged, assert_recovered, serve

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not ON_POSTGRESQL, reason="the PostgreSQL run of the suite covers it"),
]

BIN = (
    sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
    if glob.glob("/usr/lib/postgresql/*/bin")
    else ""
)


def _as_postgres(*command: str) -> None:
    subprocess.run(
        ["runuser", "-u", "postgres", "--", *command],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )


class Postgres:
    def __init__(self, root: Path, port: int) -> None:
        self.data, self.port = root / "data", port
        self.log = root / "postgres.log"

    def start(self) -> None:
        _as_postgres(
            f"{BIN}/pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-o",
            f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1",
            "start",
        )

    def stop(self) -> None:
        _as_postgres(f"{BIN}/pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@contextlib.contextmanager
def _own_server(hba: str = "") -> Iterator[Postgres]:
    # Outside pytest's private temp folder: the postgres user must be able to reach it.
    root = Path(tempfile.mkdtemp(prefix="grantly-pgfault-"))
    shutil.chown(root, "postgres")
    os.chmod(root, 0o755)
    server = Postgres(root, free_port())
    _as_postgres(f"{BIN}/initdb", "-D", str(server.data), "-A", "trust", "-U", "postgres")
    if hba:
        (server.data / "pg_hba.conf").write_text(hba)
    server.start()
    _as_postgres(
        f"{BIN}/createdb", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "grantly"
    )
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[Postgres]:
    with _own_server() as server:
        yield server


@pytest.fixture
def postgres_with_passwords() -> Iterator[Postgres]:
    """The superuser trusted, every other role with its password (SCRAM)."""
    with _own_server(
        "local all all trust\n"
        "host all postgres 127.0.0.1/32 trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
    ) as server:
        yield server


def test_a_stopped_database_gets_503_and_grantly_recovers_when_it_returns(
    own_postgres: Postgres, tmp_path: Path
) -> None:
    """The whole server stopped (connections refused), then started again: 503 in every
    form while it is down; the same process, untouched, serves the very next request once it
    is back, and the tokens issued before are still valid."""
    with serve(f"postgresql://postgres@127.0.0.1:{own_postgres.port}/grantly", tmp_path) as served:
        own_postgres.stop()
        assert_down(served)
        own_postgres.start()
        assert_recovered(served)
        assert_logged(served)


def test_a_password_changed_under_a_running_server_gets_503_until_it_is_restored(
    postgres_with_passwords: Postgres, tmp_path: Path
) -> None:
    """The role's password changed (a rotation half done) and its sessions ended: PostgreSQL
    refuses every new connection (28P01), which is a 503 with the usual form, and the password
    never reaches the log; once the server's password is valid again, the next request is
    served and nothing committed is lost."""
    import asyncio
    import secrets

    import asyncpg

    port = postgres_with_passwords.port
    password = secrets.token_urlsafe(16)

    def admin(*statements: str) -> None:
        async def main() -> None:
            connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
            try:
                for statement in statements:
                    await connection.execute(statement)
            finally:
                await connection.close()

        asyncio.run(main())

    admin(
        f"CREATE ROLE grantly_app LOGIN PASSWORD '{password}'",
        "ALTER DATABASE grantly OWNER TO grantly_app",
        "ALTER SCHEMA public OWNER TO grantly_app",
    )
    url = f"postgresql://grantly_app:{password}@127.0.0.1:{port}/grantly"
    ended = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'grantly_app'"
    with serve(url, tmp_path) as served:
        admin(f"ALTER ROLE grantly_app PASSWORD '{secrets.token_urlsafe(16)}'", ended)
        _wait_for_no_sessions(port)
        assert_down(served)
        admin(f"ALTER ROLE grantly_app PASSWORD '{password}'")
        assert_recovered(served)
        assert_logged(served)
        assert password not in served.log.read_text()
        assert "password authentication failed" in postgres_with_passwords.log.read_text()


def _wait_for_no_sessions(port: int) -> None:
    import asyncio

    import asyncpg

    async def main() -> None:
        connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
        try:
            for _ in range(500):
                if not await connection.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = 'grantly_app'"
                ):
                    return
                await asyncio.sleep(0.01)
        finally:
            await connection.close()
        raise AssertionError("the role's sessions did not end")

    asyncio.run(main())
