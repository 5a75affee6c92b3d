"""Scopes: RFC 6749 §3.3.

A scope is a list of space-delimited, case-sensitive scope-tokens
(``1*( %x21 / %x23-5B / %x5D-7E )``); Grantly also accepts commas, as Factorial's guides write
``scope=read,write``. With no scope requested the server uses a default (the application's own
scopes); a request beyond what the application is registered for is ``invalid_scope``, never
silently widened or narrowed (§3.3, §4.1.2.1).
"""

from __future__ import annotations

import pytest

from grantly.oauth import scopes
from grantly.oauth.errors import InvalidScope

SERVER = ("read", "write")


def test_scopes_are_separated_by_spaces() -> None:
    assert scopes.parse("read write") == ("read", "write")


def test_scopes_are_separated_by_commas_as_factorials_guides_write_them() -> None:
    assert scopes.parse("read,write") == ("read", "write")


def test_spaces_and_commas_may_be_mixed_and_repeated() -> None:
    assert scopes.parse(" read , ,write  ") == ("read", "write")


def test_a_repeated_scope_counts_once() -> None:
    assert scopes.parse("read write read") == ("read", "write")


def test_the_order_of_the_request_is_kept_when_parsing() -> None:
    assert scopes.parse("write read") == ("write", "read")


def test_no_scope_parameter_parses_to_no_scopes() -> None:
    assert scopes.parse(None) == ()


def test_a_scope_parameter_of_separators_only_parses_to_no_scopes() -> None:
    assert scopes.parse(" , ") == ()


@pytest.mark.parametrize("token", ['re"ad', "re\\ad", "lé", "re\tad"])
def test_a_scope_token_with_a_character_rfc_6749_forbids_is_an_invalid_scope(token: str) -> None:
    with pytest.raises(InvalidScope) as caught:
        scopes.parse(f"write {token}")
    assert (caught.value.error, caught.value.status) == ("invalid_scope", 400)


def test_punctuation_that_rfc_6749_allows_is_a_valid_scope_token() -> None:
    assert scopes.parse("employees:read https://api.example/x!") == (
        "employees:read",
        "https://api.example/x!",
    )


def test_scopes_are_case_sensitive() -> None:
    with pytest.raises(InvalidScope):
        scopes.resolve_requested(scopes.parse("READ"), ("read", "write"), SERVER)


def test_scopes_are_written_space_delimited() -> None:
    assert scopes.to_string(("read", "write")) == "read write"


def test_no_requested_scope_defaults_to_the_applications_scopes() -> None:
    assert scopes.resolve_requested((), ("write", "read"), SERVER) == ("read", "write")


def test_a_request_within_the_applications_scopes_is_granted_as_asked() -> None:
    assert scopes.resolve_requested(("read",), ("read", "write"), SERVER) == ("read",)


def test_granted_scopes_follow_the_servers_order() -> None:
    assert scopes.resolve_requested(("write", "read"), ("read", "write"), SERVER) == (
        "read",
        "write",
    )


def test_a_request_beyond_the_applications_scopes_is_an_invalid_scope() -> None:
    with pytest.raises(InvalidScope) as caught:
        scopes.resolve_requested(("read", "write"), ("read",), SERVER)
    assert caught.value.error == "invalid_scope"


def test_a_request_beyond_the_applications_scopes_is_never_silently_narrowed() -> None:
    # Refused as a whole rather than answered with the allowed part only.
    with pytest.raises(InvalidScope):
        scopes.resolve_requested(("read", "admin"), ("read",), SERVER)


def test_the_invalid_scope_description_names_the_excess_and_the_registered_scopes() -> None:
    with pytest.raises(InvalidScope) as caught:
        scopes.resolve_requested(("read", "write"), ("read",), SERVER)
    assert "'write'" in caught.value.description
    assert "registered for: read" in caught.value.description


def test_an_application_with_no_scopes_is_described_as_such() -> None:
    with pytest.raises(InvalidScope) as caught:
        scopes.resolve_requested(("read",), (), SERVER)
    assert "(no scopes)" in caught.value.description


def test_registered_scopes_must_be_offered_by_the_server() -> None:
    with pytest.raises(InvalidScope) as caught:
        scopes.validate_registration(("read", "admin"), SERVER)
    assert "'admin'" in caught.value.description
    assert "read write" in caught.value.description


def test_registered_scopes_are_deduplicated_and_put_in_the_servers_order() -> None:
    assert scopes.validate_registration(("write", "read", "write"), SERVER) == ("read", "write")


def test_ordering_puts_unknown_scopes_last_in_their_given_order() -> None:
    assert scopes.ordered(("z", "write", "a", "read"), SERVER) == ("read", "write", "z", "a")


def test_known_scopes_have_a_plain_description_for_the_consent_page() -> None:
    assert "your company's data" in scopes.describe("read")


def test_an_unknown_scope_is_described_by_its_name() -> None:
    assert "'payroll'" in scopes.describe("payroll")
