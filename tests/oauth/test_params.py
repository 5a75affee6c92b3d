"""Reading request parameters: RFC 6749 §3.1 and §3.2.

"Parameters sent without a value MUST be treated as if they were omitted from the request" and
"Request and response parameters MUST NOT be included more than once" (RFC 6749 §3.1, §3.2);
a repeated parameter is an ``invalid_request`` (§4.1.2.1, §5.2). Values are bounded in length.
"""

from __future__ import annotations

import pytest

from grantly.oauth.errors import InvalidRequest, OAuthError
from grantly.oauth.params import ParamReader
from tests.oauth.support import description_is_rfc6749_safe, params


def refusal(reader: ParamReader, name: str) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        reader.get(name)
    return caught.value


def test_a_parameter_sent_once_is_read() -> None:
    assert ParamReader(params(state="xyz")).get("state") == "xyz"


def test_a_parameter_that_was_not_sent_reads_as_none() -> None:
    assert ParamReader(params(state="xyz")).get("scope") is None


def test_a_parameter_sent_without_a_value_is_treated_as_omitted() -> None:
    assert ParamReader(params(scope="")).get("scope") is None


def test_a_parameter_sent_twice_without_a_value_is_treated_as_omitted() -> None:
    assert ParamReader(params(scope=["", ""])).get("scope") is None


def test_a_repeated_parameter_is_an_invalid_request() -> None:
    error = refusal(ParamReader(params(client_id=["a", "b"])), "client_id")
    assert isinstance(error, InvalidRequest)
    assert (error.error, error.status, error.redirectable) == ("invalid_request", 400, False)


def test_a_repeated_parameter_is_refused_even_when_both_values_are_equal() -> None:
    error = refusal(ParamReader(params(code=["abc", "abc"])), "code")
    assert error.error == "invalid_request"


def test_a_parameter_repeated_with_an_empty_value_is_still_refused_as_repeated() -> None:
    # The strict reading of §3.1: the parameter was included more than once.
    error = refusal(ParamReader(params(state=["xyz", ""])), "state")
    assert error.error == "invalid_request"


def test_the_repeated_parameter_error_names_the_parameter() -> None:
    error = refusal(ParamReader(params(redirect_uri=["a", "b"])), "redirect_uri")
    assert "'redirect_uri'" in error.description
    assert "repeated" in error.description


def test_a_repeated_parameter_does_not_affect_reading_the_others() -> None:
    reader = ParamReader(params(scope=["read", "write"], state="xyz"))
    assert reader.get("state") == "xyz"


def test_a_value_as_long_as_the_limit_is_accepted() -> None:
    assert ParamReader(params(state="s" * 2048)).get("state") == "s" * 2048


def test_a_value_longer_than_the_limit_is_an_invalid_request() -> None:
    error = refusal(ParamReader(params(state="s" * 2049)), "state")
    assert (error.error, error.status) == ("invalid_request", 400)


def test_the_too_long_error_gives_the_length_and_the_limit() -> None:
    error = refusal(ParamReader(params(state="s" * 2049)), "state")
    assert "'state'" in error.description
    assert "2049" in error.description
    assert "2048" in error.description


def test_the_length_limit_is_configurable() -> None:
    reader = ParamReader(params(state="s" * 11), max_length=10)
    assert refusal(reader, "state").error == "invalid_request"


def test_require_returns_a_present_parameter() -> None:
    assert ParamReader(params(grant_type="refresh_token")).require("grant_type") == "refresh_token"


def test_require_refuses_a_missing_parameter_naming_it() -> None:
    with pytest.raises(InvalidRequest) as caught:
        ParamReader(params()).require("grant_type")
    assert caught.value.error == "invalid_request"
    assert "'grant_type'" in caught.value.description
    assert "missing" in caught.value.description


def test_require_treats_an_empty_value_as_missing() -> None:
    with pytest.raises(InvalidRequest):
        ParamReader(params(code="")).require("code")


def test_the_repeated_parameter_error_body_uses_only_characters_rfc_6749_allows() -> None:
    description = refusal(ParamReader(params(state=["a", "b"])), "state").body()[
        "error_description"
    ]
    assert description_is_rfc6749_safe(description), description


@pytest.mark.parametrize("value", ["a\x00b", "line\nbreak", "tab\there", "del\x7f"])
def test_a_value_with_control_characters_is_an_invalid_request(value: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        ParamReader({"state": [value]}).get("state")
    assert "control characters" in caught.value.description
