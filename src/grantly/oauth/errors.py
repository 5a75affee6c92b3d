"""OAuth errors, one type for all of them.

The codes are those of RFC 6749 §4.1.2.1 (authorization endpoint), §5.2 (token endpoint),
RFC 6750 §3.1 (resource requests), RFC 7009 §2.2.1 and RFC 8707 §2 (resource indicators).
``description`` is safe to show to the client; ``debug`` is for logs only and never leaves the
server.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """Something the audit trail must record along with the error (RFC 9700 §4.14.2: a reused
    refresh token; RFC 6749 §4.1.2: a replayed code)."""

    name: str
    application_id: int
    company_id: int
    user_id: int | None


def _ALLOWED(c: str) -> bool:
    return c in " !" or "#" <= c <= "[" or "]" <= c <= "~"


def shown(value: str, limit: int = 40) -> str:
    """A request value quoted in an error description: short, so that no one can use Grantly's
    error redirects to carry a message of their own (RFC 9700 §4.11.2)."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


class OAuthError(Exception):
    """An error answered to a client or a person in the form RFC 6749 prescribes.

    ``redirectable`` tells whether the error may be sent back to the client's redirect URI
    (RFC 6749 §4.1.2.1): only once the client and the redirect URI are known to be genuine.
    """

    error: str = "invalid_request"
    status: int = 400

    def __init__(
        self,
        description: str,
        *,
        error: str | None = None,
        status: int | None = None,
        debug: str | None = None,
        event: SecurityEvent | None = None,
    ) -> None:
        super().__init__(description)
        self.description = description
        if error is not None:
            self.error = error
        if status is not None:
            self.status = status
        self.redirectable = False
        self.debug = debug
        self.event = event
        self.redirect_uri: str | None = None
        self.state: str | None = None

    def as_redirectable(self, redirect_uri: str, state: str | None) -> OAuthError:
        """Mark the error as one to send back to a trusted redirect URI, with the state."""
        self.redirectable = True
        self.redirect_uri = redirect_uri
        self.state = state
        return self

    @property
    def public_description(self) -> str:
        """The description in the characters RFC 6749 §4.1.2.1 and §5.2 allow in
        ``error_description`` (%x20-21 / %x23-5B / %x5D-7E); pages for people show the full
        ``description``."""
        text = self.description.replace("§", "section ")
        return "".join(c if _ALLOWED(c) else "?" for c in text)

    def body(self) -> dict[str, str]:
        """The RFC 6749 §5.2 JSON body."""
        return {"error": self.error, "error_description": self.public_description}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.error!r}, {self.description!r})"


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """RFC 6749 §5.2: client authentication failed. Answered with 401 and WWW-Authenticate."""

    error = "invalid_client"
    status = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """RFC 8707 §2: "The requested resource is invalid, missing, unknown, or malformed." Sent
    back to a trusted redirect URI by the authorization endpoint (§2.1), as JSON by the token
    endpoint (§2.2)."""

    error = "invalid_target"


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 403


class InvalidToken(OAuthError):
    """RFC 6750 §3.1: the access token is missing, expired, revoked or malformed."""

    error = "invalid_token"
    status = 401


class InsufficientScope(OAuthError):
    """RFC 6750 §3.1: the token lacks the scope the request needs."""

    error = "insufficient_scope"
    status = 403
