"""The core's values: the token response of RFC 6749 §5.1 and the token state of RFC 6750 §3.1.

§5.1: ``access_token``, ``token_type`` (Bearer, RFC 6750 §4), ``expires_in``, ``refresh_token``
and ``scope`` (space-delimited, §3.3), plus Doorkeeper's ``created_at`` as Factorial answers.
Company tokens never expire and carry no refresh token. An access token is active (RFC 7662
§2.2) when not revoked, not expired and its user is still active.
"""

from __future__ import annotations

from grantly.oauth.models import AccessToken, Application, ResourceOwner, TokenResponse, User

NOW = 1_700_000_000
EMPLOYEE = User(id=7, company_id=3, email="e@acme.example", name="e", admin=False, active=True)


def user_response() -> TokenResponse:
    return TokenResponse("gat_a", ("read", "write"), NOW, 3600, "grt_r")


def company_response() -> TokenResponse:
    return TokenResponse("gat_a", ("read",), NOW, None, None)


def access_token(**changes: object) -> AccessToken:
    values: dict[str, object] = {
        "id": 1,
        "application_id": 1,
        "client_id": "web-client",
        "owner": ResourceOwner.for_user(EMPLOYEE),
        "scopes": ("read",),
        "created_at": NOW,
        "expires_at": NOW + 3600,
        "revoked_at": None,
        "user_active": True,
    }
    values.update(changes)
    return AccessToken(**values)  # type: ignore[arg-type]


def test_a_user_token_response_has_factorials_fields() -> None:
    assert user_response().body() == {
        "access_token": "gat_a",
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": "grt_r",
        "scope": "read write",
        "created_at": NOW,
    }


def test_a_company_token_response_has_no_expires_in_and_no_refresh_token() -> None:
    assert company_response().body() == {
        "access_token": "gat_a",
        "token_type": "Bearer",
        "scope": "read",
        "created_at": NOW,
    }


def test_the_token_type_is_bearer() -> None:
    assert user_response().body()["token_type"] == "Bearer"


def test_the_scope_is_space_delimited() -> None:
    assert user_response().body()["scope"] == "read write"


def test_an_unrevoked_unexpired_token_of_an_active_user_is_active() -> None:
    assert access_token().is_active(NOW)


def test_a_token_is_active_one_second_before_it_expires() -> None:
    assert access_token().is_active(NOW + 3599)


def test_a_token_is_inactive_from_the_second_it_expires() -> None:
    assert not access_token().is_active(NOW + 3600)


def test_a_revoked_token_is_inactive() -> None:
    assert not access_token(revoked_at=NOW).is_active(NOW)


def test_a_token_without_expiry_stays_active() -> None:
    assert access_token(expires_at=None).is_active(NOW + 100 * 365 * 24 * 3600)


def test_a_token_without_expiry_is_inactive_once_revoked() -> None:
    assert not access_token(expires_at=None, revoked_at=NOW).is_active(NOW)


def test_a_user_token_is_inactive_once_the_user_is_deactivated() -> None:
    assert not access_token(user_active=False).is_active(NOW)


def test_a_company_token_does_not_depend_on_the_authorizing_user() -> None:
    owner = ResourceOwner.for_company(3, authorized_by=7)
    assert access_token(owner=owner, expires_at=None, user_active=False).is_active(NOW)


def test_a_user_owner_acts_as_the_user() -> None:
    assert ResourceOwner.for_user(EMPLOYEE) == ResourceOwner("user", 3, 7)


def test_a_company_owner_remembers_who_authorized_it() -> None:
    assert ResourceOwner.for_company(3, authorized_by=7) == ResourceOwner("company", 3, 7)


def test_a_user_owners_subject_names_the_user() -> None:
    assert ResourceOwner.for_user(EMPLOYEE).subject == "user:7"


def test_a_company_owners_subject_names_the_company_not_the_authorizer() -> None:
    assert ResourceOwner.for_company(3, authorized_by=7).subject == "company:3"


def test_an_application_that_is_not_confidential_is_public() -> None:
    application = Application(1, 3, "app", "cid", None, False, ("com.example.app:/cb",), ())
    assert application.public
