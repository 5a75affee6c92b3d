"""A client metadata document server for tests: https on loopback (``localhost``), with a
certificate from a test CA (trustme) that Grantly trusts through the standard SSL_CERT_FILE.
Each test sets the documents it serves and reads which paths were asked for."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme


@dataclass
class Served:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class DocumentServer:
    port: int
    ca_file: Path
    documents: dict[str, Served] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"https://localhost:{self.port}{path}"

    def publish(
        self, path: str, document: object, *, cache_control: str = "max-age=300", **headers: str
    ) -> str:
        """Serve ``document`` as JSON at ``path``; returns its URL."""
        self.documents[path] = Served(
            200,
            json.dumps(document).encode(),
            {"Content-Type": "application/json", "Cache-Control": cache_control, **headers},
        )
        return self.url(path)

    def serve(self, path: str, served: Served) -> str:
        self.documents[path] = served
        return self.url(path)


class _Server(ThreadingHTTPServer):
    documents: DocumentServer

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up (a refused body over the cap) is what some tests do."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        state = self.server.documents
        state.requests.append(self.path)
        served = state.documents.get(self.path, Served(404, b"{}", {}))
        self.send_response(served.status)
        for name, value in served.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(served.body)))
        self.end_headers()
        self.wfile.write(served.body)


@pytest.fixture(scope="session")
def document_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


@pytest.fixture
def documents(
    document_ca: tuple[trustme.CA, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[DocumentServer]:
    """A document server on https://localhost:PORT; SSL_CERT_FILE names its CA for the test."""
    ca, ca_file = document_ca
    httpd = _Server(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(context)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    state = DocumentServer(httpd.server_port, ca_file)
    httpd.documents = state
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
