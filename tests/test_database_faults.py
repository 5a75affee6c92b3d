"""With PostgreSQL stopped, Grantly answers 503 in the right form and recovers by itself when
it returns; nothing a client received is lost. Runs its own PostgreSQL server (the machine's
binaries, a throwaway data directory, a free port) so that stopping it disturbs nothing else."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    ON_POSTGRESQL,
    REDIRECT_URI,
    authorize_params,
    callback_params,
    consent,
    free_port,
    make_settings,
    seed,
    sign_in,
    start_server,
    stop_server,
)

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


@pytest.fixture
def own_postgres() -> Iterator[Postgres]:
    # Outside pytest's private temp folder: the postgres user must be able to reach it.
    root = Path(tempfile.mkdtemp(prefix="grantly-pgfault-"))
    shutil.chown(root, "postgres")
    os.chmod(root, 0o755)
    server = Postgres(root, free_port())
    _as_postgres(f"{BIN}/initdb", "-D", str(server.data), "-A", "trust", "-U", "postgres")
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


def _wait_for(predicate, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    return False


def test_a_stopped_database_gets_503_and_grantly_recovers_when_it_returns(
    own_postgres: Postgres, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(
        tmp_path,
        issuer=url,
        database_url=f"postgresql://postgres@127.0.0.1:{own_postgres.port}/grantly",
    )
    world = seed(settings)
    process = start_server(settings, url, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=url) as browser:
            sign_in(browser, world.admin)
            code = callback_params(consent(browser, authorize_params(world.app)))["code"]
        app = world.app
        token = httpx.post(
            f"{url}/oauth/token",
            auth=(app.client_id, app.client_secret or ""),
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{url}/api/v1/me", headers=headers).status_code == 200

        own_postgres.stop()
        api = httpx.get(f"{url}/api/v1/me", headers=headers, timeout=30)
        assert api.status_code == 503
        assert api.json()["error"] == "temporarily_unavailable"
        assert api.headers["retry-after"]
        page = httpx.get(f"{url}/oauth/authorize", params=authorize_params(app), timeout=30)
        assert page.status_code == 503
        assert "briefly unavailable" in page.text
        assert httpx.get(f"{url}/readyz", timeout=30).status_code == 503

        own_postgres.start()
        # The same process, untouched, serves again; the token issued before is still valid.
        assert _wait_for(lambda: httpx.get(f"{url}/api/v1/me", headers=headers).status_code == 200)
        assert httpx.get(f"{url}/readyz").status_code == 200
    finally:
        stop_server(process)
