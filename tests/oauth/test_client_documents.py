"""What a client metadata document URL and its document must be to be used
(grantly/oauth/client_documents.py; draft-ietf-oauth-client-id-metadata-document §3, §4.1)."""

from __future__ import annotations

import pytest

from grantly.oauth.client_documents import (
    InvalidClientDocument,
    check_url,
    is_document_url,
    parse,
)

URL = "https://agent.example/oauth/client.json"


def _document(**changes: object) -> dict[str, object]:
    document: dict[str, object] = {
        "client_id": URL,
        "client_name": "Agent",
        "redirect_uris": ["http://127.0.0.1:33418/callback", "https://agent.example/cb"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not None}


def test_a_good_document_is_used() -> None:
    parsed = parse(URL, _document(client_uri="https://agent.example/"))
    assert parsed.client_name == "Agent"
    assert parsed.redirect_uris == ("http://127.0.0.1:33418/callback", "https://agent.example/cb")
    assert parsed.client_uri == "https://agent.example/"


def test_without_a_name_the_host_names_it() -> None:
    assert parse(URL, _document(client_name=None)).client_name == "agent.example"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"client_id": "https://agent.example/other.json"}, "not the URL it was fetched from"),
        ({"client_id": URL + "/"}, "not the URL it was fetched from"),
        ({"client_secret": "s3cret"}, "must not contain client_secret"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "shared secret"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "must be none"),
        ({"redirect_uris": []}, "non-empty list"),
        ({"redirect_uris": "https://agent.example/cb"}, "non-empty list"),
        ({"redirect_uris": ["http://evil.example/cb"]}, "only https is allowed"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "cannot be a redirect URI"),
        ({"redirect_uris": ["urn:ietf:wg:oauth:2.0:oob"]}, "out-of-band"),
        ({"grant_types": ["client_credentials"]}, "authorization_code"),
        ({"client_name": "  "}, "non-empty"),
        ({"logo_uri": "javascript:x"}, "logo_uri"),
    ],
)
def test_a_document_that_breaks_a_rule_is_refused(changes: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidClientDocument, match=problem):
        parse(URL, _document(**changes))


def test_a_document_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidClientDocument, match="JSON object"):
        parse(URL, [URL])


def test_only_https_urls_are_document_urls() -> None:
    assert is_document_url(URL)
    assert not is_document_url("grantly-demo-client")
    assert not is_document_url("http://agent.example/client.json")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://agent.example", "path"),
        ("https://agent.example/", "path"),
        ("https://agent.example/a/../client.json", "segments"),
        ("https://agent.example/./client.json", "segments"),
        ("https://agent.example/client.json#x", "fragment"),
        ("https://agent.example/client.json?v=1", "query"),
        ("https://user:pw@agent.example/client.json", "user name"),
        ("https://agent.example:99999/client.json", "valid URL"),
        ("https://agent.example/cli ent.json", "printable ASCII"),
        ("https://agent.éxample/client.json", "printable ASCII"),
    ],
)
def test_a_url_that_cannot_be_a_client_id_is_refused(url: str, problem: str) -> None:
    with pytest.raises(InvalidClientDocument, match=problem):
        check_url(url)


def test_a_good_url_is_kept_as_it_is() -> None:
    assert check_url(URL) == URL
