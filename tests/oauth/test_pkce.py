"""Proof Key for Code Exchange: RFC 7636 (with RFC 9700 §2.1.1 and §4.8.2).

§4.1: code_verifier = 43*128unreserved. §4.2: S256 is BASE64URL(SHA256(ASCII(verifier))).
§4.3: code_challenge_method defaults to "plain", which Grantly refuses unless allowed
(RFC 9700 §2.1.1). §4.4.1: a bad challenge is ``invalid_request`` at the authorization endpoint.
§4.6: a verifier that does not match is ``invalid_grant`` at the token endpoint.
Appendix B gives the test vector.
"""

from __future__ import annotations

import re

import pytest

from grantly.oauth import pkce
from grantly.oauth.errors import InvalidGrant, InvalidRequest
from tests.oauth.support import RFC7636_CHALLENGE, RFC7636_VERIFIER

UNRESERVED_43_TO_128 = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def test_s256_matches_the_rfc_7636_appendix_b_test_vector() -> None:
    assert pkce.s256(RFC7636_VERIFIER) == RFC7636_CHALLENGE


def test_the_appendix_b_verifier_verifies_against_its_s256_challenge() -> None:
    pkce.verify(RFC7636_VERIFIER, RFC7636_CHALLENGE, "S256")


def test_a_verifier_that_does_not_match_the_challenge_is_an_invalid_grant() -> None:
    other = RFC7636_VERIFIER[:-1] + "l"
    with pytest.raises(InvalidGrant) as caught:
        pkce.verify(other, RFC7636_CHALLENGE, "S256")
    assert (caught.value.error, caught.value.status) == ("invalid_grant", 400)
    assert "does not match" in caught.value.description


def test_the_challenge_itself_is_not_accepted_as_the_s256_verifier() -> None:
    with pytest.raises(InvalidGrant):
        pkce.verify(RFC7636_CHALLENGE, RFC7636_CHALLENGE, "S256")


def test_a_missing_verifier_for_a_code_issued_with_a_challenge_is_an_invalid_grant() -> None:
    with pytest.raises(InvalidGrant) as caught:
        pkce.verify(None, RFC7636_CHALLENGE, "S256")
    assert "code_verifier is required" in caught.value.description


def test_a_verifier_for_a_code_issued_without_a_challenge_is_an_invalid_grant() -> None:
    # RFC 9700 §4.8.2: otherwise a stolen code issued without PKCE could be injected.
    with pytest.raises(InvalidGrant):
        pkce.verify(RFC7636_VERIFIER, None, None)


def test_no_verifier_and_no_challenge_is_accepted() -> None:
    pkce.verify(None, None, None)


def test_a_verifier_of_42_characters_is_an_invalid_grant() -> None:
    verifier = "a" * 42
    with pytest.raises(InvalidGrant) as caught:
        pkce.verify(verifier, pkce.s256(verifier), "S256")
    assert "43 to 128" in caught.value.description


def test_a_verifier_of_129_characters_is_an_invalid_grant() -> None:
    verifier = "a" * 129
    with pytest.raises(InvalidGrant):
        pkce.verify(verifier, pkce.s256(verifier), "S256")


@pytest.mark.parametrize("length", [43, 128])
def test_verifiers_of_the_boundary_lengths_are_accepted(length: int) -> None:
    verifier = ("-._~" + "aZ09" * 40)[:length]
    pkce.verify(verifier, pkce.s256(verifier), "S256")


@pytest.mark.parametrize("character", ["+", "/", "=", " ", "%"])
def test_a_verifier_with_a_reserved_character_is_an_invalid_grant(character: str) -> None:
    verifier = "a" * 42 + character
    with pytest.raises(InvalidGrant):
        pkce.verify(verifier, pkce.s256(verifier), "S256")


def test_a_plain_challenge_is_compared_with_the_verifier_as_is() -> None:
    pkce.verify(RFC7636_VERIFIER, RFC7636_VERIFIER, "plain")


def test_a_plain_challenge_refuses_a_different_verifier() -> None:
    with pytest.raises(InvalidGrant):
        pkce.verify(RFC7636_VERIFIER, RFC7636_CHALLENGE, "plain")


def test_a_new_verifier_satisfies_rfc_7636_section_4_1() -> None:
    assert UNRESERVED_43_TO_128.match(pkce.new_verifier())


def test_new_verifiers_differ() -> None:
    assert pkce.new_verifier() != pkce.new_verifier()


def test_an_s256_challenge_is_accepted() -> None:
    assert pkce.validate_challenge(RFC7636_CHALLENGE, "S256", allow_plain=False) == (
        RFC7636_CHALLENGE,
        "S256",
    )


def test_no_challenge_and_no_method_means_no_pkce() -> None:
    assert pkce.validate_challenge(None, None, allow_plain=False) is None


def test_a_challenge_without_a_method_is_plain_and_refused_by_default() -> None:
    with pytest.raises(InvalidRequest) as caught:
        pkce.validate_challenge(RFC7636_CHALLENGE, None, allow_plain=False)
    assert (caught.value.error, caught.value.status) == ("invalid_request", 400)
    assert "'plain'" in caught.value.description
    assert "S256" in caught.value.description


def test_an_explicit_plain_method_is_refused_by_default() -> None:
    with pytest.raises(InvalidRequest):
        pkce.validate_challenge(RFC7636_VERIFIER, "plain", allow_plain=False)


def test_a_challenge_without_a_method_defaults_to_plain_when_plain_is_allowed() -> None:
    assert pkce.validate_challenge(RFC7636_VERIFIER, None, allow_plain=True) == (
        RFC7636_VERIFIER,
        "plain",
    )


@pytest.mark.parametrize("method", ["s256", "S512", "SHA256"])
def test_a_method_other_than_s256_or_plain_is_refused(method: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        pkce.validate_challenge(RFC7636_CHALLENGE, method, allow_plain=True)
    assert f"'{method}'" in caught.value.description


def test_a_method_without_a_challenge_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest) as caught:
        pkce.validate_challenge(None, "S256", allow_plain=False)
    assert "without code_challenge" in caught.value.description


def test_a_challenge_shorter_than_43_characters_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest) as caught:
        pkce.validate_challenge(RFC7636_CHALLENGE[:42], "S256", allow_plain=False)
    assert "43-character" in caught.value.description


def test_an_s256_challenge_longer_than_43_characters_is_an_invalid_request() -> None:
    # RFC 7636 §4.2: BASE64URL of 32 bytes is always 43 characters; a longer one never verifies.
    with pytest.raises(InvalidRequest):
        pkce.validate_challenge(RFC7636_CHALLENGE + "A", "S256", allow_plain=False)


def test_a_plain_challenge_of_128_characters_is_accepted_when_plain_is_allowed() -> None:
    assert pkce.validate_challenge("a" * 128, "plain", allow_plain=True) == ("a" * 128, "plain")


def test_a_challenge_with_padding_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        pkce.validate_challenge(RFC7636_CHALLENGE + "=", "S256", allow_plain=False)


def test_the_supported_methods_are_s256_and_plain_only_when_allowed() -> None:
    assert (pkce.methods(False), pkce.methods(True)) == (("S256",), ("S256", "plain"))
