"""``private_key_jwt`` client authentication (RFC 7523 §2.2, §3; OpenID Connect Core §9).

The client signs a short-lived JWT with a private key whose public half it registered (a JWK
Set, or a ``jwks_uri``), and sends it as ``client_assertion`` with ``client_assertion_type``
``urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` instead of a secret. RFC 7523 §3:
``iss`` and ``sub`` are the client_id; ``aud`` names the authorization server (its issuer, or
the URL of the endpoint the assertion is sent to); ``exp`` is required, and Grantly wants it
short (``MAX_LIFETIME``); the ``jti`` is used once (§3, "MAY ensure"; OIDC Core §9: "the
authorization server SHOULD reject" a reused one), remembered by every process of every host
until the assertion expires.

JOSE itself is ``joserfc``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeGuard

from joserfc import jws, jwt
from joserfc.jwk import KeySet

from .clock import Clock
from .dpop import MALFORMED_JOSE
from .errors import InvalidClient
from .models import Application
from .ports import ClientKeys, ReplayGuard

# RFC 8414 ``token_endpoint_auth_signing_alg_values_supported``: asymmetric only ("none" and
# HMAC would not be private_key_jwt).
ALGORITHMS: tuple[str, ...] = ("ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA")
# An assertion may be valid for at most this long from now (its exp); a little leeway for
# clocks when checking exp, nbf and iat.
MAX_LIFETIME = 300
LEEWAY = 30
MAX_ASSERTION_LENGTH = 8192


@dataclass(frozen=True, slots=True)
class Authenticator:
    """Verifies client assertions for the endpoint a request was sent to: ``audiences`` are the
    values its ``aud`` may name (the issuer, and the endpoint's URL)."""

    keys: ClientKeys
    replay: ReplayGuard
    clock: Clock
    audiences: tuple[str, ...]
    algorithms: tuple[str, ...] = ALGORITHMS

    async def verify(self, assertion: str, application: Application) -> None:
        """Raise ``invalid_client`` unless ``assertion`` authenticates ``application``."""
        if len(assertion) > MAX_ASSERTION_LENGTH:
            raise InvalidClient("the client assertion is too long.")
        try:
            header = jws.extract_compact(assertion.encode("ascii")).protected
        except MALFORMED_JOSE:
            raise InvalidClient("the client assertion is not a compact JWS.") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise InvalidClient(
                f"the client assertion's alg must be one of {', '.join(self.algorithms)}."
            )
        token = await self._verified(assertion, str(alg), application)
        claims = token.claims
        if not isinstance(claims, dict):
            raise InvalidClient("the client assertion's claims must be a JSON object.")
        now = self.clock.now()
        client_id = application.client_id
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise InvalidClient("the client assertion's iss and sub must both be the client_id.")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if not any(isinstance(a, str) and a in self.audiences for a in audiences):
            raise InvalidClient(
                f"the client assertion's aud must name this server: {' or '.join(self.audiences)}."
            )
        exp = claims.get("exp")
        if not _is_time(exp) or exp + LEEWAY <= now:
            raise InvalidClient("the client assertion has expired (or has no exp).")
        if exp > now + MAX_LIFETIME + LEEWAY:
            raise InvalidClient(
                f"the client assertion may be valid for at most {MAX_LIFETIME} seconds."
            )
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is not None and (not _is_time(value) or value > now + LEEWAY):
                raise InvalidClient(f"the client assertion's {name} is in the future.")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= 256:
            raise InvalidClient("the client assertion needs a jti (a unique string).")
        if not await self.replay.first_use(f"assertion:{client_id}:{jti}", int(exp) + LEEWAY + 1):
            raise InvalidClient("this client assertion was used before: make a new one.")

    async def _verified(self, assertion: str, alg: str, application: Application) -> Any:
        """The decoded assertion, verified by a key of the client's JWK Set; a key id the
        cached set of a ``jwks_uri`` does not hold makes it fetched once more (a rotation)."""
        for refresh in (False, True):
            key_set = await self._key_set(application, refresh)
            try:
                return jwt.decode(assertion, key_set, algorithms=[alg])
            except MALFORMED_JOSE:
                if refresh or application.jwks_uri is None:
                    break
        raise InvalidClient("the client assertion's signature does not verify with its keys.")

    async def _key_set(self, application: Application, refresh: bool) -> KeySet:
        document = await self.keys.key_set(application, refresh)
        try:
            return KeySet.import_key_set(document)  # type: ignore[arg-type]
        except MALFORMED_JOSE:
            raise InvalidClient("the client's JWK Set holds no usable key.") from None


def _is_time(value: object) -> TypeGuard[float]:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) < 2**53
    )
