"""Slow and vanishing clients against a real `grantly serve`, over raw sockets: headers or a
body trickled slower than their deadline get 408 and the connection closes, an idle keep-alive
connection closes after its timeout, connections beyond the limit get 503, and a client that
disconnects mid-body leaves one access line with 499 and nothing else.

The server runs with short bounds (the GRANTLY_* settings below) so that each test takes a few
seconds; the bounds are checked from both sides (not before, and not much after)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    World,
    copy_world,
    drop_world,
    free_port,
    make_settings,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.live

HEADER_TIMEOUT = 1.5
BODY_TIMEOUT = 1.5
KEEP_ALIVE_TIMEOUT = 2
MAX_CONNECTIONS = 6
# How late a deadline may be noticed on a machine shared with other work.
SLACK = 1.5


@dataclass
class Server:
    url: str
    port: int
    world: World
    log_path: Path
    _offset: int = 0

    def mark(self) -> None:
        """Later ``lines()`` return only what the server logs from now on."""
        self._offset = self.log_path.stat().st_size

    def text(self) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(self._offset)
            return log.read().decode("utf-8", "replace")

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text().splitlines() if line.startswith("{")]

    def access_lines(self, path: str, wait: float = 5.0) -> list[dict]:
        """The access lines of ``path`` logged since ``mark()``, once there is one."""
        deadline = time.monotonic() + wait
        while True:
            found = [
                line
                for line in self.lines()
                if line.get("event") == "request" and line.get("path") == path
            ]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, seeded_template: tuple[Path, World]
) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("slow")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(folder, issuer=url)
    world = copy_world(seeded_template, settings)
    log_path = folder / "server.log"
    with pytest.MonkeyPatch.context() as env:  # read by `grantly serve` (tests.conftest.server_env)
        env.setenv("GRANTLY_HEADER_TIMEOUT", str(HEADER_TIMEOUT))
        env.setenv("GRANTLY_BODY_TIMEOUT", str(BODY_TIMEOUT))
        env.setenv("GRANTLY_KEEP_ALIVE_TIMEOUT", str(KEEP_ALIVE_TIMEOUT))
        env.setenv("GRANTLY_MAX_CONNECTIONS", str(MAX_CONNECTIONS))
        env.setenv("GRANTLY_LOG_FORMAT", "json")
        process = start_server(settings, url, log_path)
    try:
        yield Server(url, port, world, log_path)
    finally:
        stop_server(process)
        drop_world(settings)


def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _until_closed(sock: socket.socket, within: float, trickle: bytes = b"") -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took;
    meanwhile ``trickle`` (if any) is sent a byte every 0.1 s, as a slow client would. Fails
    when the connection is still open after ``within`` seconds."""
    started = time.monotonic()
    received = b""
    sock.settimeout(0.1)
    while time.monotonic() - started < within:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if trickle:
                with contextlib.suppress(OSError):  # the server may have closed in between
                    sock.sendall(trickle[:1])
                trickle = trickle[1:]
            continue
        except ConnectionResetError:
            return received, time.monotonic() - started
        if not chunk:
            return received, time.monotonic() - started
        received += chunk
    pytest.fail(f"the connection was still open after {within} s; received {received[:200]!r}")


def _response(sock: socket.socket) -> bytes:
    """One response with a Content-Length, the connection left open."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(_headers(head)["content-length"])
    while len(body) < length:
        body += sock.recv(65536)
    return data


def _status(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:100]
    return int(response.split(b" ", 2)[1])


def _headers(response: bytes) -> dict[str, str]:
    head = response.partition(b"\r\n\r\n")[0].decode("latin-1")
    return {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in head.split("\r\n")[1:])
    }


def _body(response: bytes) -> bytes:
    return response.partition(b"\r\n\r\n")[2]


def _assert_serving(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


# --- headers -----------------------------------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    server: Server,
) -> None:
    with _connect(server) as sock:
        received, elapsed = _until_closed(sock, HEADER_TIMEOUT + SLACK + 3)
    # Nothing was asked: nothing is answered (a 408 on an unused connection confuses
    # browsers that opened it in advance).
    assert received == b""
    assert HEADER_TIMEOUT - 0.2 <= elapsed <= HEADER_TIMEOUT + SLACK
    _assert_serving(server)


def test_headers_trickled_past_the_header_timeout_get_408_and_the_connection_closes(
    server: Server,
) -> None:
    server.mark()
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        # Slowloris: a byte of one more header line every 0.1 s, never the blank line.
        received, elapsed = _until_closed(
            sock, HEADER_TIMEOUT + SLACK + 3, trickle=b"X-Slow: " + b"a" * 200
        )
    assert _status(received) == 408
    assert _headers(received)["connection"] == "close"
    assert HEADER_TIMEOUT - 0.2 <= elapsed <= HEADER_TIMEOUT + SLACK
    timed_out = [line for line in server.lines() if line.get("status") == 408]
    assert len(timed_out) == 1 and timed_out[0]["level"] == "info", server.text()
    _assert_serving(server)


def test_the_header_timeout_applies_to_every_request_of_a_keep_alive_connection(
    server: Server,
) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _status(_response(sock)) == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        received, _ = _until_closed(sock, HEADER_TIMEOUT + SLACK + 3, trickle=b"Host: " * 40)
        elapsed = time.monotonic() - started
    assert _status(received) == 408
    assert HEADER_TIMEOUT - 0.2 <= elapsed <= HEADER_TIMEOUT + SLACK


def test_headers_larger_than_the_bound_get_431_and_the_connection_closes(server: Server) -> None:
    from grantly.serving import MAX_HEADER_BYTES

    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        with contextlib.suppress(OSError):  # the server stops reading, then closes
            for _ in range(4 * MAX_HEADER_BYTES // 4096):
                sock.sendall(b"a" * 4096)
        received, elapsed = _until_closed(sock, HEADER_TIMEOUT + SLACK)
    assert _status(received) == 431
    assert elapsed < HEADER_TIMEOUT  # at once, not when the headers' time is up
    _assert_serving(server)


def test_headers_just_under_the_bound_are_served(server: Server) -> None:
    from grantly.serving import MAX_HEADER_BYTES

    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for index in range(MAX_HEADER_BYTES // 1024 - 2):
            sock.sendall(f"X-Fill-{index:03}: ".encode() + b"a" * 1000 + b"\r\n")
        sock.sendall(b"\r\n")
        assert _status(_response(sock)) == 200


def test_the_header_timeout_applies_to_a_pipelined_request(server: Server) -> None:
    with _connect(server) as sock:
        # One packet: a whole request, then the start of the next one, never finished.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /healthz HTTP/1.1\r\nHo")
        received, elapsed = _until_closed(sock, HEADER_TIMEOUT + SLACK + 3)
    first, _, rest = received.partition(b'{"status":"ok"}')
    assert _status(first) == 200
    assert _status(rest) == 408
    assert HEADER_TIMEOUT - 0.2 <= elapsed <= HEADER_TIMEOUT + SLACK


# --- bodies ------------------------------------------------------------------------------


def test_a_body_trickled_past_the_body_timeout_gets_408_through_the_application(
    server: Server,
) -> None:
    server.mark()
    body = b"grant_type=client_credentials&client_id=" + b"x" * 200
    with _connect(server) as sock:
        sock.sendall(
            b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Origin: https://spa.example\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        received, elapsed = _until_closed(sock, BODY_TIMEOUT + SLACK + 3, trickle=body)
    assert _status(received) == 408
    assert BODY_TIMEOUT - 0.2 <= elapsed <= BODY_TIMEOUT + SLACK
    headers = _headers(received)
    assert headers["connection"] == "close"
    # An answer of the application like any other: JSON for a client, with the security
    # headers, CORS and the request id, and the access line and metrics say 408.
    assert json.loads(_body(received))["error"] == "invalid_request"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["access-control-allow-origin"] == "*"
    (line,) = server.access_lines("/oauth/token")
    assert line["status"] == 408 and line["request_id"] == headers["x-request-id"]
    _assert_serving(server)


def test_a_body_the_handler_does_not_read_must_still_arrive_within_the_body_timeout(
    server: Server,
) -> None:
    """The handler answers before the body arrived (405 here; a 401 or 413 alike): the rest
    is read and dropped, as long as it keeps to the body's deadline."""
    with _connect(server) as sock:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n")
        received, elapsed = _until_closed(sock, BODY_TIMEOUT + SLACK + 3, trickle=b"z" * 1000)
    assert _status(received) == 405
    assert BODY_TIMEOUT - 0.2 <= elapsed <= BODY_TIMEOUT + SLACK


def test_a_body_that_arrives_in_time_after_an_early_answer_leaves_the_connection_usable(
    server: Server,
) -> None:
    with _connect(server) as sock:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n")
        assert _status(_response(sock)) == 405
        sock.sendall(b"0123456789")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _status(_response(sock)) == 200


def test_a_connection_idle_after_a_late_body_closes_after_the_keep_alive_timeout(
    server: Server,
) -> None:
    with _connect(server) as sock:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n")
        assert _status(_response(sock)) == 405
        time.sleep(0.5)
        sock.sendall(b"0123456789")  # the body, in time; then nothing more
        started = time.monotonic()
        received, _ = _until_closed(sock, KEEP_ALIVE_TIMEOUT + SLACK + 3)
    assert received == b""
    assert time.monotonic() - started <= KEEP_ALIVE_TIMEOUT + SLACK


# --- keep-alive and the connection limit ---------------------------------------------------


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
    server: Server,
) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _status(_response(sock)) == 200
        received, elapsed = _until_closed(sock, KEEP_ALIVE_TIMEOUT + SLACK + 3)
    assert received == b""
    assert KEEP_ALIVE_TIMEOUT - 0.2 <= elapsed <= KEEP_ALIVE_TIMEOUT + SLACK


def test_requests_beyond_the_connection_limit_get_503_until_connections_close(
    server: Server,
) -> None:
    held = [_connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        for sock in held:  # each one served, and kept open
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert _status(_response(sock)) == 200
        with _connect(server) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            received, _ = _until_closed(extra, 5)
        assert _status(received) == 503
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while httpx.get(f"{server.url}/healthz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "still refused after the connections closed"
        time.sleep(0.1)


# --- disconnects -------------------------------------------------------------------------

API_PUT = "/api/2026-10-01/resources/employees/employees/1"
FORM = b"application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("POST", "/oauth/token", FORM),
        ("POST", "/oauth/revoke", FORM),
        ("POST", "/oauth/introspect", FORM),
        ("POST", "/login", FORM),
        ("POST", "/oauth/authorize", FORM),  # consent
        ("POST", "/oauth/applications", FORM),  # a dashboard form
        ("PUT", API_PUT, b"application/json"),
    ],
)
def test_a_client_that_disconnects_mid_body_leaves_one_info_line_with_499(
    server: Server, method: str, path: str, content_type: bytes
) -> None:
    server.mark()
    with _connect(server) as sock:
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
            + b"Content-Type: "
            + content_type
            + b"\r\nContent-Length: 500\r\n\r\n"
            + b"a="
            + b"b" * 40
        )
        time.sleep(0.3)  # the handler is waiting for the rest of the body
    lines = server.access_lines(path)
    assert [(line["status"], line["level"]) for line in lines] == [(499, "info")], server.text()
    _assert_serving(server)
    time.sleep(0.2)
    text = server.text()
    assert "Traceback" not in text, text
    others = [line for line in server.lines() if line.get("event") != "request"]
    assert others == [], text
    # A disconnect is the client's doing: no 5xx anywhere in the metrics.
    metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
    counts = [
        line for line in metrics.splitlines() if line.startswith("grantly_http_request_duration")
    ]
    assert not [line for line in counts if 'status="5' in line], metrics
    assert [line for line in counts if 'status="499"' in line and method in line]
