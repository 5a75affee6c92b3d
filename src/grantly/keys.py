"""Grantly's signing keys: JWKs (RFC 7517) for ES256 (the default) or RS256 (RFC 7518 §3.4,
§3.3), each named by its RFC 7638 thumbprint (``kid``), published at ``jwks_uri`` from the
moment it is made, and signing from its ``activates_at`` on (a rotation publishes the new key
before it signs, so verifiers that cache the key set see it first).

Private keys are never stored in clear: each is sealed with Fernet (AES-128-CBC with
HMAC-SHA256, ``cryptography``) under a key derived from ``GRANTLY_SECRET_KEY`` with HKDF-SHA256
(RFC 5869). Every process of every host that shares the secret key and the database signs with
the same active key: the newest key whose time has come, chosen by a rule every process
applies alike. JOSE itself is ``joserfc``'s; nothing of JOSE is written here.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc.jwk import ECKey, RSAKey

Algorithm = Literal["ES256", "RS256"]
ALGORITHMS: tuple[Algorithm, ...] = ("ES256", "RS256")
DEFAULT_ALGORITHM: Algorithm = "ES256"
RSA_BITS = 2048
# A rotated-in key is published this long before it signs unless told otherwise: longer than
# the JWKS may be cached (web/metadata.py: 5 minutes).
DEFAULT_ACTIVATE_AFTER = 600


class KeyUnsealable(Exception):
    """A sealed private key that the secret key does not open (another GRANTLY_SECRET_KEY)."""


@dataclass(frozen=True, slots=True)
class NewKey:
    kid: str
    alg: Algorithm
    public_jwk: dict[str, Any]
    private_pem: bytes


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A key as stored: its public half in clear, its private half sealed."""

    kid: str
    alg: Algorithm
    public_jwk: dict[str, Any]
    sealed_private: str
    created_at: int
    activates_at: int
    retired_at: int | None = None

    def published(self) -> dict[str, Any]:
        """Its entry in the JWK Set (RFC 7517 §4): the public parameters, ``kid``, ``alg``,
        ``use``."""
        return {**self.public_jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}


def generate(alg: Algorithm = DEFAULT_ALGORITHM) -> NewKey:
    key: ECKey | RSAKey
    if alg == "ES256":
        key = ECKey.generate_key("P-256")
    elif alg == "RS256":
        key = RSAKey.generate_key(RSA_BITS)
    else:
        raise ValueError(f"alg must be one of {', '.join(ALGORITHMS)}")
    private_pem = key.as_pem(private=True)
    return NewKey(key.thumbprint(), alg, dict(key.as_dict(private=False)), private_pem)


def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"grantly signing keys"
    ).derive(secret_key.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(private_pem: bytes, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(private_pem).decode("ascii")


def unseal(sealed: str, secret_key: str) -> bytes:
    try:
        return _fernet(secret_key).decrypt(sealed.encode("ascii"))
    except InvalidToken:
        raise KeyUnsealable(
            "a signing key was sealed with another GRANTLY_SECRET_KEY: every process must "
            "share the same secret key."
        ) from None


def private_key(key: SigningKey, secret_key: str) -> ECKey | RSAKey:
    pem = unseal(key.sealed_private, secret_key)
    return ECKey.import_key(pem) if key.alg == "ES256" else RSAKey.import_key(pem)


def active(keys: list[SigningKey], now: int) -> SigningKey | None:
    """The key that signs at ``now``: of the keys not retired whose time has come, the one that
    activated last (then the one made last, then the greater kid): every process, reading the
    same rows, picks the same."""
    ready = [k for k in keys if k.retired_at is None and k.activates_at <= now]
    if not ready:
        return None
    return max(ready, key=lambda k: (k.activates_at, k.created_at, k.kid))


def published(keys: list[SigningKey]) -> dict[str, Any]:
    """The JWK Set (RFC 7517 §5): every key not retired, those not signing yet included."""
    return {"keys": [k.published() for k in keys if k.retired_at is None]}


def stopped_signing_at(key: SigningKey, keys: list[SigningKey]) -> int | None:
    """When ``key`` stopped signing: when the next key activated after it (None while it
    still signs, or never did)."""
    later = [
        k.activates_at
        for k in keys
        if k.kid != key.kid
        and (k.activates_at, k.created_at, k.kid) > (key.activates_at, key.created_at, key.kid)
    ]
    return min(later) if later else None


def retirement_refusal(
    key: SigningKey, keys: list[SigningKey], now: int, longest_token_lifetime: int
) -> str | None:
    """Why a key cannot be retired yet: it signs now, or a token it signed may still be valid
    (it stopped signing less than the longest access-token lifetime ago). None: it may go."""
    if key.retired_at is not None:
        return "it is already retired"
    current = active(keys, now)
    if current is not None and current.kid == key.kid:
        return "it is the key that signs now; rotate first"
    if key.activates_at > now:
        return None  # it never signed
    stopped = stopped_signing_at(key, keys)
    if stopped is not None and now - stopped < longest_token_lifetime:
        return (
            f"tokens it signed may be valid until {stopped + longest_token_lifetime} "
            f"({stopped + longest_token_lifetime - now} seconds from now)"
        )
    return None


def jwk_json(jwk: dict[str, Any]) -> str:
    return json.dumps(jwk, sort_keys=True, separators=(",", ":"))
