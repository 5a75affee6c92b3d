"""Making DPoP proofs (RFC 9449 §4.2) and client assertions (RFC 7523 §3) in tests, with
joserfc, as a client would."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey


def new_key(kind: str = "EC") -> Any:
    return ECKey.generate_key("P-256") if kind == "EC" else RSAKey.generate_key(2048)


def ath(token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()


def proof(
    key: Any,
    htm: str,
    htu: str,
    *,
    token: str | None = None,
    nonce: str | None = None,
    iat: int | None = None,
    jti: str | None = None,
    alg: str | None = None,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    alg = alg or ("ES256" if isinstance(key, ECKey) else "RS256")
    body: dict[str, Any] = {
        "jti": secrets.token_urlsafe(12) if jti is None else jti,
        "htm": htm,
        "htu": htu,
        "iat": int(time.time()) if iat is None else iat,
    }
    if token is not None:
        body["ath"] = ath(token)
    if nonce is not None:
        body["nonce"] = nonce
    body.update(claims)
    head = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False)}
    head.update(header or {})
    return jwt.encode(head, body, key, algorithms=[alg])


def assertion(
    key: Any,
    client_id: str,
    aud: str | list[str],
    *,
    exp_in: int = 60,
    jti: str | None = None,
    kid: str | None = None,
    now: int | None = None,
    **claims: Any,
) -> str:
    now = int(time.time()) if now is None else now
    alg = "ES256" if isinstance(key, ECKey) else "RS256"
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now,
        "exp": now + exp_in,
        "jti": secrets.token_urlsafe(12) if jti is None else jti,
        **claims,
    }
    head: dict[str, Any] = {"alg": alg}
    if kid is not None:
        head["kid"] = kid
    return jwt.encode(head, body, key, algorithms=[alg])
