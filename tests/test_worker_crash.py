"""A worker killed with SIGKILL under load loses no token that a client received: a token is
only answered after its transaction committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import (
    REDIRECT_URI,
    World,
    authorize_params,
    callback_params,
    consent,
    free_port,
    server_env,
    sign_in,
)

pytestmark = pytest.mark.live


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in out.split()]


def test_killing_a_worker_under_load_loses_no_token_handed_out(world: World) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "grantly.cli", "serve", "--port", str(port), "--workers", "2"],
        env=server_env(world.settings, url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while len(_children(process.pid)) < 2 or not _ready(url):
            assert time.monotonic() < deadline and process.poll() is None, "did not start"
            time.sleep(0.2)
        app = world.app
        with httpx.Client(base_url=url) as browser:
            sign_in(browser, world.employee)
            codes = [
                callback_params(consent(browser, authorize_params(app)))["code"] for _ in range(60)
            ]

        received: list[str] = []
        lock = threading.Lock()

        def exchange(code: str) -> None:
            try:
                response = httpx.post(
                    f"{url}/oauth/token",
                    auth=(app.client_id, app.client_secret or ""),
                    data={
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": REDIRECT_URI,
                    },
                    timeout=15,
                )
            except httpx.TransportError:
                return  # the worker died with this request: the client got nothing
            if response.status_code == 200:
                with lock:
                    received.append(response.json()["access_token"])

        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(exchange, code) for code in codes]
            while len(received) < 20:  # under load: about a sixth of the exchanges answered
                time.sleep(0.005)
            os.kill(_children(process.pid)[0], signal.SIGKILL)
            killed_at = len(received)
            for future in futures:
                future.result()

        assert killed_at < len(codes) and len(received) > killed_at, "the kill was not under load"
        deadline = time.monotonic() + 30
        while not _ready(url):
            assert time.monotonic() < deadline, "the server did not recover"
            time.sleep(0.2)
        for token in received:
            me = httpx.get(f"{url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_sigterm_finishes_the_requests_in_flight_then_exits(world: World) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "grantly.cli", "serve", "--port", str(port)],
        env=server_env(world.settings, url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not _ready(url):
            assert time.monotonic() < deadline and process.poll() is None, "did not start"
            time.sleep(0.2)
        # Six people signing in at once, each with a session and a CSRF token of their own (a
        # sign-in replaces the session, so one browser's later posts would be refused).
        browsers = [httpx.Client(base_url=url) for _ in range(6)]
        try:
            tokens = [
                b.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
                for b in browsers
            ]
            # Several sign-ins in flight (argon2 makes each take a while), then SIGTERM.
            with ThreadPoolExecutor(max_workers=6) as pool:
                futures = [
                    pool.submit(
                        b.post,
                        "/login",
                        data={
                            "email": world.admin.email,
                            "password": world.admin.password,
                            "csrf_token": token,
                            "next": "/",
                        },
                    )
                    for b, token in zip(browsers, tokens, strict=True)
                ]
                time.sleep(0.05)
                process.send_signal(signal.SIGTERM)
                statuses = [future.result().status_code for future in futures]
        finally:
            for b in browsers:
                b.close()
        assert statuses == [303] * 6
        # uvicorn re-raises the signal once it has shut down cleanly: "terminated by SIGTERM".
        assert process.wait(timeout=15) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
