"""Proof Key for Code Exchange (RFC 7636).

S256 is always supported; ``plain`` only when the server allows it (RFC 9700 §2.1.1 and
§4.8.2 recommend against it). Public clients must use PKCE (RFC 9700 §2.1.1).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from .errors import InvalidGrant, InvalidRequest, shown

# RFC 7636 §4.1: code-verifier = 43*128unreserved
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# RFC 7636 §4.2: the S256 challenge is BASE64URL(SHA256(verifier)): exactly 43 characters.
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
_PLAIN_CHALLENGE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def methods(allow_plain: bool) -> tuple[str, ...]:
    return ("S256", "plain") if allow_plain else ("S256",)


def new_verifier() -> str:
    """A code verifier with 256 bits of entropy (RFC 7636 §4.1, §7.1)."""
    return secrets.token_urlsafe(32)


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: code_challenge = BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))."""
    raw = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def validate_challenge(
    challenge: str | None, method: str | None, *, allow_plain: bool
) -> tuple[str, str] | None:
    """Check the authorization request's PKCE parameters (RFC 7636 §4.3, §4.4.1)."""
    if challenge is None:
        if method is not None:
            raise InvalidRequest("code_challenge_method was sent without code_challenge.")
        return None
    method = method or "plain"  # RFC 7636 §4.3: defaults to "plain" when absent
    if method not in methods(allow_plain):
        raise InvalidRequest(
            f"code_challenge_method '{shown(method)}' is not supported; use S256 (RFC 7636 §4.2)."
        )
    if method == "S256" and not _S256_CHALLENGE.match(challenge):
        raise InvalidRequest(
            "an S256 code_challenge is the 43-character BASE64URL of a SHA-256 digest."
        )
    if method == "plain" and not _PLAIN_CHALLENGE.match(challenge):
        raise InvalidRequest("code_challenge must be 43 to 128 unreserved characters.")
    return challenge, method


def verify(verifier: str | None, challenge: str | None, method: str | None) -> None:
    """RFC 7636 §4.6: the token request's verifier must match the stored challenge."""
    if challenge is None:
        if verifier is not None:
            # RFC 9700 §4.8.2: a verifier for a code issued without a challenge is refused,
            # or an attacker could inject a stolen code that was issued without PKCE.
            raise InvalidGrant("code_verifier was sent but the code was issued without PKCE.")
        return
    if verifier is None:
        raise InvalidGrant("code_verifier is required: the code was issued with PKCE.")
    if not _VERIFIER.match(verifier):
        raise InvalidGrant("code_verifier must be 43 to 128 unreserved characters.")
    computed = s256(verifier) if method == "S256" else verifier
    if not hmac.compare_digest(computed, challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge.")
