"""Client ID Metadata Documents at the authorization endpoint: a client_id that is an https
URL is fetched (over https on loopback, the test CA as SSL_CERT_FILE) and used as the client's
metadata, cached per its Cache-Control; every way a document can be wrong is shown to the
person as a page, never redirected, and nothing is stored."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from grantly.app import create_app
from grantly.oauth import pkce
from grantly.oauth.clock import FrozenClock
from tests.conftest import World, callback_params, count_rows, hidden_fields, sign_in
from tests.document_server import DocumentServer, Served

CALLBACK = "http://127.0.0.1:33418/callback"


def _document(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": url,
        "client_name": "Example Agent",
        "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "none",
        **extra,
    }


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_900_000_000)


@pytest.fixture
def http(world: World, clock: FrozenClock, documents: DocumentServer) -> Iterator[TestClient]:
    settings = world.settings.model_copy(update={"cimd_allow_loopback": True})
    with TestClient(
        create_app(settings, clock=clock),
        base_url="http://127.0.0.1:8000",
        follow_redirects=False,
        client=("127.0.0.1", 50000),
    ) as client:
        sign_in(client, world.employee)
        yield client


def _params(client_id: str) -> tuple[dict[str, str], str]:
    verifier = pkce.new_verifier()
    return {
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "state": "xyz",
        "code_challenge": pkce.s256(verifier),
        "code_challenge_method": "S256",
    }, verifier


def test_a_document_client_is_fetched_consented_and_exchanges_its_code(
    http: TestClient, world: World, documents: DocumentServer
) -> None:
    url = documents.url("/agent/client.json")
    documents.publish("/agent/client.json", _document(url))
    params, verifier = _params(url)
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    assert "Not registered by your company" in page.text
    assert f"localhost:{documents.port}" in page.text  # the document's host
    assert "127.0.0.1:33418" in page.text  # where the access goes
    assert "Example Agent" in page.text
    result = callback_params(
        http.post("/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"})
    )
    tokens = http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": CALLBACK,
            "client_id": url,
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text
    me = http.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
    )
    assert me.json()["company"]["id"] == world.company_a
    stored = world.run(lambda uow: uow.applications.by_client_id(url))
    assert stored.company_id is None and stored.origin == "metadata_document"
    assert stored.public and stored.authorized_at is not None


def test_the_document_is_cached_per_cache_control_then_fetched_again(
    http: TestClient, world: World, documents: DocumentServer, clock: FrozenClock
) -> None:
    url = documents.publish("/c.json", {}, cache_control="max-age=120")
    documents.publish("/c.json", _document(url), cache_control="max-age=120")
    params, _ = _params(url)
    assert http.get("/oauth/authorize", params=params).status_code == 200
    assert http.get("/oauth/authorize", params=params).status_code == 200
    assert documents.requests == ["/c.json"]
    documents.publish("/c.json", _document(url, client_name="Renamed Agent"))
    clock.advance(121)
    page = http.get("/oauth/authorize", params=params)
    assert "Renamed Agent" in page.text
    assert documents.requests == ["/c.json", "/c.json"]


def test_a_changed_redirect_uri_in_the_document_is_honoured_after_refetch(
    http: TestClient, documents: DocumentServer, clock: FrozenClock
) -> None:
    url = documents.url("/r.json")
    documents.publish("/r.json", _document(url), cache_control="max-age=60")
    params, _ = _params(url)
    assert http.get("/oauth/authorize", params=params).status_code == 200
    documents.publish("/r.json", _document(url, redirect_uris=["http://127.0.0.1:9/other"]))
    clock.advance(61)
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 400
    assert "redirect_uri does not match" in page.text


@pytest.mark.parametrize(
    ("served", "reason"),
    [
        (Served(302, b"", {"Location": "https://localhost/elsewhere.json"}), "redirect"),
        (Served(200, b"{" + b" " * 6000 + b"}", {"Content-Type": "application/json"}), "larger"),
        (Served(200, b"<html></html>", {"Content-Type": "text/html"}), "not JSON"),
        (Served(200, b"{nope", {"Content-Type": "application/json"}), "not valid JSON"),
        (Served(404, b"{}", {"Content-Type": "application/json"}), "HTTP status 404"),
    ],
)
def test_an_unusable_answer_is_a_page_and_nothing_is_stored(
    http: TestClient, world: World, documents: DocumentServer, served: Served, reason: str
) -> None:
    before = count_rows(world.settings, "applications")
    url = documents.serve("/bad.json", served)
    params, _ = _params(url)
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert reason in page.text
    assert "location" not in page.headers
    assert count_rows(world.settings, "applications") == before


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"client_id": "https://localhost/other.json"}, "not the URL it was fetched from"),
        ({"client_secret": "s3cret"}, "must not contain client_secret"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "shared secret"),
        ({"redirect_uris": ["http://evil.example/cb"]}, "redirect_uris"),
        ({"redirect_uris": []}, "redirect_uris"),
    ],
)
def test_a_document_that_breaks_the_rules_is_refused(
    http: TestClient, world: World, documents: DocumentServer, change: dict, reason: str
) -> None:
    url = documents.url("/rules.json")
    documents.publish("/rules.json", {**_document(url), **change})
    params, _ = _params(url)
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 400
    assert reason in page.text.replace("&#39;", "'")
    assert world.run(lambda uow: uow.applications.by_client_id(url)) is None


@pytest.mark.parametrize(
    "client_id",
    [
        "https://localhost/",  # no path
        "https://localhost/a.json?x=1",
        "https://localhost/a/../b.json",
        "https://user@localhost/a.json",
    ],
)
def test_client_id_urls_that_break_section_3_are_refused_unfetched(
    http: TestClient, documents: DocumentServer, client_id: str
) -> None:
    params, _ = _params(client_id)
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 400
    assert documents.requests == []


def test_loopback_documents_are_refused_without_the_test_setting(
    world: World, documents: DocumentServer
) -> None:
    """The default: a document on a loopback address is an SSRF attempt, refused before any
    connection is made (the server sees no request)."""
    url = documents.url("/agent.json")
    documents.publish("/agent.json", _document(url))
    with TestClient(
        create_app(world.settings), base_url="http://127.0.0.1:8000", follow_redirects=False
    ) as http:
        sign_in(http, world.employee)
        params, _ = _params(url)
        page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 400
    assert "loopback address" in page.text
    assert documents.requests == []


def test_a_certificate_from_an_untrusted_ca_is_refused(
    world: World, documents: DocumentServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    url = documents.url("/agent.json")
    documents.publish("/agent.json", _document(url))
    settings = world.settings.model_copy(update={"cimd_allow_loopback": True})
    with TestClient(
        create_app(settings), base_url="http://127.0.0.1:8000", follow_redirects=False
    ) as http:
        sign_in(http, world.employee)
        params, _ = _params(url)
        page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 400
    assert "TLS certificate is not trusted" in page.text


def test_an_unknown_document_client_at_the_token_endpoint_is_invalid_client(
    http: TestClient, documents: DocumentServer
) -> None:
    """The token endpoint never fetches: a document client it does not know was never
    authorized."""
    response = http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": "gac_x",
            "redirect_uri": CALLBACK,
            "client_id": documents.url("/never.json"),
            "code_verifier": "x" * 43,
        },
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert documents.requests == []


def test_a_company_that_blocks_one_document_client(
    http: TestClient, world: World, documents: DocumentServer
) -> None:
    url = documents.url("/blocked.json")
    documents.publish("/blocked.json", _document(url))
    params, _ = _params(url)
    assert http.get("/oauth/authorize", params=params).status_code == 200
    application = world.run(lambda uow: uow.applications.by_client_id(url))
    world.run(lambda uow: uow.agents.block(world.company_a, application.id, world.admin.id, 0))
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 403
    assert "blocked this application" in page.text


def test_the_consent_page_names_the_resource_asked_for(
    http: TestClient, documents: DocumentServer
) -> None:
    url = documents.url("/res.json")
    documents.publish("/res.json", _document(url))
    params, _ = _params(url)
    page = http.get("/oauth/authorize", params={**params, "resource": "http://127.0.0.1:8000/mcp"})
    assert page.status_code == 200
    assert "<code>http://127.0.0.1:8000/mcp</code>" in page.text


def test_an_anonymous_visitor_signs_in_before_anything_is_fetched(
    world: World, documents: DocumentServer
) -> None:
    url = documents.url("/anon.json")
    documents.publish("/anon.json", _document(url))
    settings = world.settings.model_copy(update={"cimd_allow_loopback": True})
    before = count_rows(world.settings, "applications")
    with TestClient(
        create_app(settings), base_url="http://127.0.0.1:8000", follow_redirects=False
    ) as anonymous:
        params, _ = _params(url)
        response = anonymous.get("/oauth/authorize", params=params)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    assert documents.requests == []
    assert count_rows(world.settings, "applications") == before


@pytest.mark.parametrize(
    "client_id",
    [
        "https://a..b/x.json",
        "https://./x.json",
        "https://.example/x.json",
        "https://" + "a" * 64 + ".example/x.json",
        "https://localhost/" + "a" * 2100 + ".json",
    ],
)
def test_a_host_no_lookup_could_take_or_an_overlong_url_is_a_page(
    http: TestClient, documents: DocumentServer, client_id: str
) -> None:
    params, _ = _params(client_id)
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 400
    assert "client_id URL" in page.text
    assert documents.requests == []


def test_a_document_with_text_that_is_not_unicode_is_refused(
    http: TestClient, world: World, documents: DocumentServer
) -> None:
    url = documents.url("/surrogate.json")
    body = json.dumps({**_document(url), "client_name": "\ud800"}).encode()
    documents.serve("/surrogate.json", Served(200, body, {"Content-Type": "application/json"}))
    params, _ = _params(url)
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 400
    assert "not valid JSON" in page.text
    assert world.run(lambda uow: uow.applications.by_client_id(url)) is None


def test_document_fetches_are_limited_per_address(world: World, documents: DocumentServer) -> None:
    settings = world.settings.model_copy(
        update={"cimd_allow_loopback": True, "cimd_fetch_limit_per_address": "2/hour"}
    )
    with TestClient(
        create_app(settings),
        base_url="http://127.0.0.1:8000",
        follow_redirects=False,
        client=("127.0.0.9", 50000),
    ) as http:
        sign_in(http, world.employee)
        for n in range(2):
            url = documents.publish(f"/many-{n}.json", {})
            documents.publish(f"/many-{n}.json", _document(url))
            assert http.get("/oauth/authorize", params=_params(url)[0]).status_code == 200
        # A known, fresh document is served from its copy: not counted.
        assert http.get("/oauth/authorize", params=_params(url)[0]).status_code == 200
        third = documents.publish("/many-3.json", {})
        documents.publish("/many-3.json", _document(third))
        refused = http.get("/oauth/authorize", params=_params(third)[0])
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "/many-3.json" not in documents.requests


def test_prune_removes_document_clients_nobody_authorized(
    http: TestClient, world: World, documents: DocumentServer, clock: FrozenClock
) -> None:
    """Documents are fetched only for people signed in, but a person who never allows one
    leaves a row; those go after 30 days, as unused registrations do."""
    from typer.testing import CliRunner

    from grantly.cli import app as cli

    url = documents.url("/unused.json")
    documents.publish("/unused.json", _document(url))
    clock.advance(int(time.time()) - 31 * 86400 - clock.now())
    assert http.get("/oauth/authorize", params=_params(url)[0]).status_code == 200
    env = {
        "GRANTLY_DATABASE_URL": world.settings.database_url,
        "GRANTLY_DATA_DIR": str(world.settings.data_dir),
    }
    result = CliRunner().invoke(cli, ["tokens", "prune", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert world.run(lambda uow: uow.applications.by_client_id(url)) is None
