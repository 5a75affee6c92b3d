"""Redirect URIs: registration rules, exact matching and response parameters.

RFC 6749 §3.1.2: an absolute URI without a fragment, whose query is retained when response
parameters are added. RFC 9700 §2.1 and §4.1.3: the requested URI matches a registered one by
exact string comparison. RFC 9700 §2.6 and RFC 8252 §7.3, §8.3: http only for loopback
addresses. RFC 8252 §7.1: custom schemes are reverse domain names, for native (public) clients.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from grantly.oauth import redirect_uris as uris
from grantly.oauth.redirect_uris import InvalidRedirectUri


def refused(uri: str, *, confidential: bool = True) -> str:
    with pytest.raises(InvalidRedirectUri) as caught:
        uris.validate_registration(uri, confidential=confidential)
    return str(caught.value)


def test_an_https_uri_is_registered_unchanged() -> None:
    uri = "https://client.example/oauth/callback"
    assert uris.validate_registration(uri, confidential=True) == uri


def test_an_https_uri_with_a_query_is_registered_unchanged() -> None:
    uri = "https://client.example/callback?tenant=acme"
    assert uris.validate_registration(uri, confidential=True) == uri


def test_surrounding_white_space_is_trimmed() -> None:
    assert (
        uris.validate_registration("  https://client.example/cb\n", confidential=True)
        == "https://client.example/cb"
    )


def test_an_empty_uri_is_refused() -> None:
    assert "empty" in refused("   ")


def test_a_relative_uri_is_refused() -> None:
    assert "absolute" in refused("/oauth/callback")


def test_a_uri_without_a_scheme_is_refused() -> None:
    assert "absolute" in refused("//client.example/callback")


def test_a_uri_with_a_fragment_is_refused() -> None:
    assert "fragment" in refused("https://client.example/callback#done")


def test_a_uri_with_an_empty_fragment_is_refused() -> None:
    assert "fragment" in refused("https://client.example/callback#")


def test_a_uri_with_interior_white_space_is_refused() -> None:
    assert "white space" in refused("https://client.example/call back")


def test_a_wildcard_is_refused_because_uris_match_exactly() -> None:
    assert "wildcard" in refused("https://*.client.example/callback")


def test_a_uri_of_2000_characters_is_accepted() -> None:
    uri = "https://client.example/" + "a" * (2000 - len("https://client.example/"))
    assert uris.validate_registration(uri, confidential=True) == uri


def test_a_uri_longer_than_2000_characters_is_refused() -> None:
    assert "2000" in refused("https://client.example/" + "a" * 2000)


def test_an_https_uri_without_a_host_is_refused() -> None:
    assert "no host" in refused("https:///callback")


def test_http_to_a_remote_host_is_refused_with_the_reason() -> None:
    message = refused("http://client.example/callback")
    assert "https" in message
    assert "loopback" in message


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8765/callback",
        "http://127.1.2.3/callback",
        "http://[::1]:8765/callback",
        "http://localhost:3000/callback",
    ],
)
def test_http_to_a_loopback_address_is_accepted(uri: str) -> None:
    assert uris.validate_registration(uri, confidential=False) == uri


def test_the_scheme_is_compared_without_regard_to_case() -> None:
    assert "https" in refused("HTTP://client.example/callback")


@pytest.mark.parametrize(
    "uri", ["http://127.attacker.example/callback", "http://127.0.0.1.nip.io/callback"]
)
def test_a_domain_name_that_merely_starts_with_127_is_not_loopback(uri: str) -> None:
    assert not uris.is_loopback(uri)
    refused(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "vbscript:msgbox(1)",
    ],
)
def test_dangerous_schemes_are_refused_even_for_public_applications(uri: str) -> None:
    assert "cannot be a redirect URI" in refused(uri, confidential=False)


def test_a_custom_scheme_is_refused_for_a_confidential_application() -> None:
    assert "RFC 8252" in refused("com.example.app:/callback", confidential=True)


def test_a_reverse_domain_custom_scheme_is_accepted_for_a_public_application() -> None:
    uri = "com.example.app:/oauth/callback"
    assert uris.validate_registration(uri, confidential=False) == uri


def test_a_custom_scheme_that_is_not_a_reverse_domain_name_is_refused() -> None:
    assert "reverse domain name" in refused("myapp://callback", confidential=False)


def test_the_out_of_band_uri_is_accepted() -> None:
    assert uris.validate_registration(uris.OUT_OF_BAND, confidential=True) == uris.OUT_OF_BAND


def test_an_identical_uri_matches() -> None:
    assert uris.matches("https://client.example/cb", "https://client.example/cb")


@pytest.mark.parametrize(
    "requested",
    [
        "https://client.example/cb/",
        "https://CLIENT.example/cb",
        "https://client.example:443/cb",
        "https://client.example/cb?x=1",
        "https://client.example/CB",
        "https://client.example/cb#",
        "http://client.example/cb",
        "https://client.example/cb/../cb",
    ],
)
def test_a_uri_that_differs_in_any_character_does_not_match(requested: str) -> None:
    assert not uris.matches(requested, "https://client.example/cb")


def test_response_parameters_are_added_as_a_query() -> None:
    assert uris.with_params("https://client.example/cb", {"code": "abc"}) == (
        "https://client.example/cb?code=abc"
    )


def test_the_registered_query_is_retained_before_the_response_parameters() -> None:
    uri = uris.with_params("https://client.example/cb?tenant=acme", {"code": "abc"})
    assert parse_qsl(urlsplit(uri).query) == [("tenant", "acme"), ("code", "abc")]


def test_response_parameters_are_form_urlencoded() -> None:
    uri = uris.with_params("https://client.example/cb", {"state": "a b&c=d/é"})
    assert dict(parse_qsl(urlsplit(uri).query)) == {"state": "a b&c=d/é"}
    assert "&c=" not in uri


def test_adding_parameters_keeps_scheme_host_and_path() -> None:
    parts = urlsplit(uris.with_params("com.example.app:/oauth/callback", {"code": "abc"}))
    assert (parts.scheme, parts.netloc, parts.path) == ("com.example.app", "", "/oauth/callback")


@pytest.mark.parametrize("name", ["code", "state", "iss", "error"])
def test_a_redirect_uri_whose_query_has_a_response_parameter_is_refused(name: str) -> None:
    message = refused(f"https://client.example/cb?{name}=x")
    assert name in message


def test_a_native_client_may_use_any_port_on_a_registered_loopback_uri() -> None:
    # RFC 8252 §7.3: the app listens on whatever port is free.
    assert uris.matches("http://127.0.0.1:53211/cb", "http://127.0.0.1/cb", native=True)
    assert uris.matches("http://[::1]:8080/cb", "http://[::1]:9999/cb", native=True)


def test_a_native_loopback_uri_must_still_match_host_path_and_query() -> None:
    registered = "http://127.0.0.1/cb"
    assert not uris.matches("http://127.0.0.1:5000/other", registered, native=True)
    assert not uris.matches("http://localhost:5000/cb", registered, native=True)
    assert not uris.matches("http://127.0.0.1:5000/cb?x=1", registered, native=True)
    assert not uris.matches("https://127.0.0.1:5000/cb", registered, native=True)


def test_a_confidential_client_gets_no_port_leeway() -> None:
    assert not uris.matches("http://127.0.0.1:53211/cb", "http://127.0.0.1/cb", native=False)


def test_a_non_loopback_uri_gets_no_port_leeway_even_for_native_clients() -> None:
    assert not uris.matches(
        "https://client.example:8443/cb", "https://client.example/cb", native=True
    )


def test_the_registered_query_is_kept_exactly_as_written() -> None:
    # RFC 6749 §3.1.2: the query component MUST be retained, not re-encoded.
    assert uris.with_params("https://a.example/cb?a=1;b=2&flag", {"code": "x y"}) == (
        "https://a.example/cb?a=1;b=2&flag&code=x+y"
    )


def test_a_dns_name_is_never_loopback_even_if_it_looks_like_one() -> None:
    assert not uris.is_loopback("http://localhost.attacker.example/cb")
    assert uris.is_loopback("http://127.8.9.10/cb")


@pytest.mark.parametrize(
    "uri",
    [
        "https://trusted.example@evil.example/cb",
        "https://user:pass@client.example/cb",
        "http://127.0.0.1@evil.example/cb",
    ],
)
def test_user_information_in_the_host_is_refused(uri: str) -> None:
    # RFC 3986 §3.2.1: a person reads trusted.example; the browser goes to evil.example.
    assert "user information" in refused(uri)


@pytest.mark.parametrize("character", ['"', "<", ">", "\\", "^", "`", "{", "|", "}"])
def test_characters_a_uri_cannot_hold_raw_are_refused(character: str) -> None:
    message = refused(f"https://client.example/cb?x={character}")
    assert "RFC 3986" in message and character in message


@pytest.mark.parametrize("uri", ["http://127.0.0.1:/cb", "http://127.0.0.1:0/cb"])
def test_an_empty_or_zero_port_is_refused_at_registration(uri: str) -> None:
    assert "port" in refused(uri, confidential=False)


@pytest.mark.parametrize(
    "requested",
    [
        "http://127.0.0.1:0/cb",  # no app listens on port 0
        "http://127.0.0.1:/cb",  # an empty port
        "http://127.0.0.1:65536/cb",
        "http://127.0.0.1:+80/cb",
        "http://127.0.0.1:05555/cb",  # one port, two spellings
        "http://127.0.0.1:5000/cb?",  # an empty query is a difference too
        "http://LOCALHOST:5000/cb",  # the host as registered, case included
        "http://x@127.0.0.1:5000/cb",
        "HTTP://127.0.0.1:5000/cb",
    ],
)
def test_loopback_port_leeway_needs_a_real_port_and_the_host_as_registered(
    requested: str,
) -> None:
    registered = "http://localhost/cb" if "LOCALHOST" in requested else "http://127.0.0.1/cb"
    assert not uris.matches(requested, registered, native=True)
    assert uris.matches(
        "http://localhost:5000/cb" if "LOCALHOST" in requested else "http://127.0.0.1:5000/cb",
        registered,
        native=True,
    )


@pytest.mark.parametrize(
    "uri", ["https://trusted.example%40evil.example/cb", "https://\u00e9vil.example/cb"]
)
def test_a_host_that_is_not_plain_ascii_is_refused(uri: str) -> None:
    assert "ASCII" in refused(uri)
