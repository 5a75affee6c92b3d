"""The SSRF-hardened fetch of documents a client names (grantly/outbound.py), against a real
https server on loopback with a test CA (trustme), the CA given as the standard SSL_CERT_FILE.

Refusals by address are proven before any connection: the resolver is injected and the server
counts every request it gets, so "refused" also means "never sent"."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from grantly.outbound import (
    MAX_CACHE_SECONDS,
    MIN_CACHE_SECONDS,
    FetchRefused,
    JsonFetcher,
    cache_seconds,
    refusal,
)

HOST = "client.test"
GOOD = {"client_id": "x", "client_name": "Agent", "redirect_uris": ["http://127.0.0.1/cb"]}


class _Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if headers.get("Transfer-Encoding") == "chunked":
            for start in range(0, len(body), 1024):
                part = body[start : start + 1024]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Host", "")))
        json_type = {"Content-Type": "application/json"}
        if self.path == "/good.json":
            self._send(
                200, json.dumps(GOOD).encode(), {**json_type, "Cache-Control": "max-age=600"}
            )
        elif self.path == "/redirect":
            self._send(
                302, b"", {"Location": f"https://client.test:{self.server.server_port}/good.json"}
            )
        elif self.path == "/big":
            self._send(200, b"[" + b"1," * 10_000 + b"1]", json_type)
        elif self.path == "/big-chunked":
            self._send(
                200, b"[" + b"1," * 10_000 + b"1]", {**json_type, "Transfer-Encoding": "chunked"}
            )
        elif self.path == "/html":
            self._send(200, b"<html></html>", {"Content-Type": "text/html"})
        elif self.path == "/bad-json":
            self._send(200, b"{not json", json_type)
        elif self.path == "/missing":
            self._send(404, b"{}", json_type)
        elif self.path == "/slow":
            time.sleep(1.5)
            self._send(200, b"{}", json_type)
        else:
            self._send(500, b"", {})


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up on purpose (a refused certificate, a body over the cap) is
        what these tests do; nothing to report."""


@pytest.fixture(autouse=True)
def only_loopback_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests name internal addresses, but only through the injected resolver: should the
    fetcher ever try to connect to one, this refuses it before any packet leaves."""
    original = asyncio.BaseEventLoop.create_connection

    async def create_connection(self, protocol_factory, host=None, port=None, **kwargs):  # type: ignore[no-untyped-def]
        assert host in ("127.0.0.1", "::1", "localhost"), f"a connection to {host} was tried"
        return await original(self, protocol_factory, host, port, **kwargs)

    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", create_connection)
    # And beneath every library: no socket of this test connects anywhere but loopback.
    original_connect = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:  # type: ignore[override]
        host = address[0] if isinstance(address, tuple) else address
        assert host in ("127.0.0.1", "::1", "localhost"), f"a connection to {host} was tried"
        original_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server(ca: trustme.CA) -> Iterator[int]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(HOST).configure_cert(context)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_port
    httpd.shutdown()


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))


def _resolver(*addresses: str):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        assert host == HOST
        return list(addresses)

    return resolve


def _fetch(url: str, *addresses: str, allow_loopback: bool = True, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    fetcher = JsonFetcher(
        max_bytes=5 * 1024,
        allow_loopback=allow_loopback,
        resolver=_resolver(*(addresses or ("127.0.0.1",))),
        timeout=timeout,
    )
    return asyncio.run(fetcher.fetch(url))


def _refused(url: str, *addresses: str, **kwargs: object) -> str:
    with pytest.raises(FetchRefused) as refused:
        _fetch(url, *addresses, **kwargs)  # type: ignore[arg-type]
    return str(refused.value)


def test_a_good_document_is_fetched_from_the_checked_address(server: int, trusted: None) -> None:
    _Handler.seen.clear()
    fetched = _fetch(f"https://{HOST}:{server}/good.json")
    assert fetched.document == GOOD
    assert fetched.max_age == 600
    # It went to the address that was checked, asking for the name the URL holds.
    assert _Handler.seen == [("/good.json", f"{HOST}:{server}")]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.5", "private"),
        ("192.168.1.1", "private"),
        ("172.16.0.1", "private"),
        ("100.64.0.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "reserved"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
    ],
)
def test_internal_addresses_are_refused_before_any_connection(
    server: int, trusted: None, address: str, reason: str
) -> None:
    _Handler.seen.clear()
    message = _refused(f"https://{HOST}:{server}/good.json", address, allow_loopback=False)
    assert reason in message
    assert _Handler.seen == []


def test_one_internal_address_among_public_ones_is_enough_to_refuse(
    server: int, trusted: None
) -> None:
    _Handler.seen.clear()
    assert "private" in _refused(f"https://{HOST}:{server}/good.json", "127.0.0.1", "10.1.1.1")
    assert _Handler.seen == []


def test_public_addresses_pass_the_check() -> None:
    assert refusal("93.184.215.14") is None
    assert refusal("2606:4700::6810:84e5") is None
    assert refusal("127.0.0.1", allow_loopback=True) is None
    assert refusal("10.0.0.1", allow_loopback=True) is not None


def test_only_https_is_fetched(server: int, trusted: None) -> None:
    _Handler.seen.clear()
    assert "https" in _refused(f"http://{HOST}:{server}/good.json")
    assert _Handler.seen == []


def test_a_redirect_is_not_followed(server: int, trusted: None) -> None:
    _Handler.seen.clear()
    assert "redirect" in _refused(f"https://{HOST}:{server}/redirect")
    assert [path for path, _ in _Handler.seen] == ["/redirect"]


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
def test_an_oversized_document_is_refused(server: int, trusted: None, path: str) -> None:
    assert "larger than 5120 bytes" in _refused(f"https://{HOST}:{server}{path}")


def test_a_document_that_is_not_json_is_refused(server: int, trusted: None) -> None:
    assert "not JSON" in _refused(f"https://{HOST}:{server}/html")
    assert "not valid JSON" in _refused(f"https://{HOST}:{server}/bad-json")
    assert "404" in _refused(f"https://{HOST}:{server}/missing")


def test_a_slow_server_runs_into_the_deadline(server: int, trusted: None) -> None:
    assert "did not answer within 0.5 seconds" in _refused(
        f"https://{HOST}:{server}/slow", timeout=0.5
    )


def test_a_certificate_from_an_unknown_ca_is_refused(
    server: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    assert "certificate" in _refused(f"https://{HOST}:{server}/good.json")


def test_cache_control_is_honoured_within_bounds() -> None:
    assert cache_seconds("max-age=600") == 600
    assert cache_seconds("public, max-age=5") == MIN_CACHE_SECONDS
    assert cache_seconds("max-age=99999999") == MAX_CACHE_SECONDS
    assert cache_seconds("no-store") == MIN_CACHE_SECONDS
    assert cache_seconds(None) == 300
