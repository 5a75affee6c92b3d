"""Registering an application: RFC 6749 §2, §2.1 and §3.1.2.2.

§2.1: confidential clients can keep a secret; public ones cannot. §3.1.2.2: clients register
their redirect URIs, which then follow the rules of §3.1.2 (see test_redirect_uris). §3.3:
scopes must be ones the server offers. Every problem is reported at once, in plain words.
"""

from __future__ import annotations

import pytest

from grantly.oauth.registration import ApplicationDraft, RegistrationError, validate

SERVER = ("read", "write")


def draft(**overrides: object) -> ApplicationDraft:
    values: dict[str, object] = {
        "name": "Payroll sync",
        "redirect_uris": ["https://client.example/callback"],
        "confidential": True,
        "scopes": ["read"],
        "server_scopes": SERVER,
    }
    values.update(overrides)
    return validate(**values)  # type: ignore[arg-type]


def problems(**overrides: object) -> list[str]:
    with pytest.raises(RegistrationError) as caught:
        draft(**overrides)
    return caught.value.problems


def test_a_valid_application_becomes_a_draft() -> None:
    assert draft() == ApplicationDraft(
        "Payroll sync", ("https://client.example/callback",), True, ("read",)
    )


def test_the_name_is_trimmed() -> None:
    assert draft(name="  Payroll sync \n").name == "Payroll sync"


def test_an_empty_name_is_a_problem() -> None:
    assert problems(name="   ") == ["the name cannot be empty."]


def test_a_name_of_200_characters_is_accepted() -> None:
    assert draft(name="n" * 200).name == "n" * 200


def test_a_name_longer_than_200_characters_is_a_problem() -> None:
    assert problems(name="n" * 201) == ["the name may be at most 200 characters."]


def test_at_least_one_redirect_uri_is_required() -> None:
    assert problems(redirect_uris=[]) == ["at least one redirect URI is required."]


def test_blank_redirect_uri_lines_are_ignored() -> None:
    uris = ["", "https://client.example/callback", "   "]
    assert draft(redirect_uris=uris).redirect_uris == ("https://client.example/callback",)


def test_only_blank_redirect_uris_count_as_none() -> None:
    assert problems(redirect_uris=["", "  "]) == ["at least one redirect URI is required."]


def test_a_repeated_redirect_uri_is_registered_once() -> None:
    uris = ["https://client.example/cb", " https://client.example/cb", "https://client.example/2"]
    assert draft(redirect_uris=uris).redirect_uris == (
        "https://client.example/cb",
        "https://client.example/2",
    )


def test_twenty_redirect_uris_may_be_registered() -> None:
    uris = [f"https://client.example/{i}" for i in range(20)]
    assert len(draft(redirect_uris=uris).redirect_uris) == 20


def test_more_than_twenty_redirect_uris_are_a_problem() -> None:
    uris = [f"https://client.example/{i}" for i in range(21)]
    assert problems(redirect_uris=uris) == ["at most 20 redirect URIs may be registered."]


def test_an_invalid_redirect_uri_is_reported_with_the_reason() -> None:
    [problem] = problems(redirect_uris=["https://client.example/cb#frag"])
    assert "fragment" in problem
    assert "https://client.example/cb#frag" in problem


def test_each_invalid_redirect_uri_is_reported() -> None:
    found = problems(redirect_uris=["http://client.example/cb", "/relative", "https://ok.example/"])
    assert len(found) == 2


def test_a_custom_scheme_is_a_problem_for_a_confidential_application() -> None:
    [problem] = problems(redirect_uris=["com.example.app:/cb"], confidential=True)
    assert "public" in problem


def test_a_public_application_may_register_a_custom_scheme() -> None:
    registered = draft(redirect_uris=["com.example.app:/cb"], confidential=False)
    assert (registered.confidential, registered.redirect_uris) == (False, ("com.example.app:/cb",))


def test_an_unknown_scope_is_a_problem() -> None:
    [problem] = problems(scopes=["read", "payroll"])
    assert "'payroll'" in problem
    assert "read write" in problem


def test_scopes_are_deduplicated_and_ordered_as_the_server_lists_them() -> None:
    assert draft(scopes=["write", "read", "write"]).scopes == ("read", "write")


def test_every_problem_is_reported_at_once() -> None:
    found = problems(name="", redirect_uris=[], scopes=["admin"])
    assert len(found) == 3


def test_the_error_message_joins_the_problems() -> None:
    with pytest.raises(RegistrationError) as caught:
        draft(name="", redirect_uris=[])
    assert str(caught.value) == (
        "the name cannot be empty.; at least one redirect URI is required."
    )


@pytest.mark.parametrize("uri", ["https://[::1/callback", "http://[not-an-ip]/callback"])
def test_a_malformed_ip_literal_redirect_uri_is_reported_as_a_problem(uri: str) -> None:
    [problem] = problems(redirect_uris=[uri])
    assert uri in problem


def test_an_application_without_any_scope_is_a_problem() -> None:
    with pytest.raises(RegistrationError) as caught:
        validate(
            name="No scopes",
            redirect_uris=["https://client.example/cb"],
            confidential=True,
            scopes=[],
            server_scopes=("read", "write"),
        )
    assert "at least one scope" in str(caught.value)
