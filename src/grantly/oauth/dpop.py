"""DPoP: proof of possession of a key, sent with token and resource requests (RFC 9449).

A client signs a fresh JWT for each request (the proof, §4.2) with a key whose public half it
puts in the proof's header; Grantly binds the tokens it issues to that key's RFC 7638
thumbprint (``jkt``, §6), and a bound token is only honoured with a proof signed by the same
key for the same request (§7.1). A proof is good once: its ``jti`` is refused when seen again
(§11.1) by every process of every host (the ``ReplayGuard``: Redis when configured, else the
database). Server nonces (§8, §9), when on, are stateless: an HMAC of the current time window,
so every process issues and accepts the same without sharing anything but the secret key.

JOSE itself is ``joserfc``'s.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import import_key
from joserfc.jws import JWSRegistry

from .clock import Clock
from .errors import OAuthError
from .ports import ReplayGuard

# RFC 9449 §5.1 ``dpop_signing_alg_values_supported``: asymmetric algorithms only (§4.2: "MUST
# NOT be none or an identifier for a symmetric algorithm").
ALGORITHMS: tuple[str, ...] = ("ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA")
# §11.1: a proof is accepted for a short time after its ``iat`` (and as long before, for
# clocks that run a little ahead); its jti is remembered for as long.
MAX_AGE = 60
MAX_PROOF_LENGTH = 8192
_PRIVATE_PARAMETERS = ("d", "p", "q", "dp", "dq", "qi", "k")
# What joserfc and the JSON parser raise on a malformed token (deep nesting included).
MALFORMED_JOSE = (JoseError, ValueError, TypeError, KeyError, RecursionError, UnicodeError)


class _Registry(JWSRegistry):
    """joserfc's registry with room for the header of a proof signed with an RSA key, whose
    ``jwk`` is larger than joserfc's default header cap (the proof's length is capped)."""

    max_header_length = 4096


# Made once: a verifier's own ``algorithms`` are checked before the registry is consulted.
_REGISTRY = _Registry(algorithms=list(ALGORITHMS))


class InvalidDpopProof(OAuthError):
    """RFC 9449 §5, §7.1: the proof is missing where it must be, malformed, or does not fit the
    request. 400 at the token endpoint; a resource answers 401 with a DPoP challenge."""

    error = "invalid_dpop_proof"


class UseDpopNonce(OAuthError):
    """RFC 9449 §8, §9: the proof lacks the server's current nonce, sent in ``DPoP-Nonce``."""

    error = "use_dpop_nonce"

    def __init__(self, description: str, nonce: str, **kwargs: Any) -> None:
        super().__init__(description, **kwargs)
        self.nonce = nonce


@dataclass(frozen=True, slots=True)
class Proof:
    """A verified proof: the thumbprint of the key that signed it (RFC 9449 §6.1)."""

    jkt: str


@dataclass(frozen=True, slots=True)
class Nonces:
    """Server-provided nonces (RFC 9449 §8): ``current`` changes every ``window`` seconds; a
    nonce of the current or the previous window is accepted, so one stays good for at least
    one window. An HMAC of the window's number under the server's secret: nobody else can make
    one, and every process makes the same."""

    secret: bytes
    window: int = 300

    def current(self, now: int) -> str:
        return self._for(now // self.window)

    def valid(self, nonce: str, now: int) -> bool:
        number = now // self.window
        given = nonce.encode("utf-8", "replace")
        return any(hmac.compare_digest(given, self._for(n).encode()) for n in (number, number - 1))

    def _for(self, number: int) -> str:
        mac = hmac.new(self.secret, b"dpop-nonce:%d" % number, hashlib.sha256).digest()
        return _b64(mac[:18])


def thumbprint_of(access_token: str) -> str:
    """RFC 9449 §4.2 ``ath``: base64url of the SHA-256 of the access token."""
    return _b64(hashlib.sha256(access_token.encode("ascii", "replace")).digest())


def htu(url: str) -> str:
    """RFC 9449 §4.3: the request's URI without its query and fragment, as compared."""
    try:
        split = urlsplit(url)
    except ValueError:
        return ""
    return urlunsplit((split.scheme.lower(), split.netloc.lower(), split.path or "/", "", ""))


@dataclass(frozen=True, slots=True)
class DpopVerifier:
    """Checks proofs the way RFC 9449 §4.3 lists, for the token endpoint and the resources."""

    replay: ReplayGuard
    clock: Clock
    nonces: Nonces | None = None
    algorithms: tuple[str, ...] = ALGORITHMS
    max_age: int = MAX_AGE

    def nonce(self) -> str | None:
        """The nonce to send in ``DPoP-Nonce`` now, when nonces are on."""
        return None if self.nonces is None else self.nonces.current(self.clock.now())

    async def verify(
        self,
        headers: list[str],
        method: str,
        url: str,
        access_token: str | None = None,
    ) -> Proof | None:
        """The proof of a request (its ``DPoP`` headers), or None when it has none; raises
        ``InvalidDpopProof`` or ``UseDpopNonce``. RFC 9449 §4.3: one well-formed JWT, ``typ``
        dpop+jwt, an asymmetric ``alg``, a public ``jwk`` that verifies the signature,
        ``htm`` and ``htu`` of this request, a recent ``iat``, ``ath`` of the access token when
        one is presented, the server's nonce when nonces are on, and a ``jti`` not seen before
        (§11.1)."""
        if not headers:
            return None
        if len(headers) > 1:
            raise InvalidDpopProof("send one DPoP header, not several (RFC 9449 section 4.3).")
        proof = headers[0].strip()
        if not proof or len(proof) > MAX_PROOF_LENGTH:
            raise InvalidDpopProof("the DPoP proof is empty or too long.")
        header, key = self._header_and_key(proof)
        try:
            token = jwt.decode(proof, key, algorithms=[header["alg"]], registry=_REGISTRY)
        except MALFORMED_JOSE:
            raise InvalidDpopProof("the DPoP proof's signature does not verify.") from None
        claims = token.claims
        if not isinstance(claims, dict):
            raise InvalidDpopProof("the DPoP proof's claims must be a JSON object.")
        now = self.clock.now()
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= 256:
            raise InvalidDpopProof("the DPoP proof needs a jti (a unique string).")
        if claims.get("htm") != method:
            raise InvalidDpopProof(f"the DPoP proof's htm is not this request's method, {method}.")
        presented_htu = claims.get("htu")
        expected_htu = htu(url)
        # A malformed htu normalizes to "", which no request's URL is.
        if not isinstance(presented_htu, str) or htu(presented_htu) != expected_htu:
            raise InvalidDpopProof(
                f"the DPoP proof's htu is not this request's URL, {expected_htu}."
            )
        iat = claims.get("iat")
        if not isinstance(iat, int) or isinstance(iat, bool) or abs(now - iat) > self.max_age:
            raise InvalidDpopProof(
                f"the DPoP proof's iat must be within {self.max_age} seconds of the server's "
                "time: make a new proof for each request."
            )
        if access_token is not None:
            ath = claims.get("ath")
            if not isinstance(ath, str) or not hmac.compare_digest(
                ath.encode("utf-8", "replace"), thumbprint_of(access_token).encode()
            ):
                raise InvalidDpopProof("the DPoP proof's ath is not the hash of this access token.")
        if self.nonces is not None:
            nonce = claims.get("nonce")
            if not isinstance(nonce, str) or not self.nonces.valid(nonce, now):
                raise UseDpopNonce(
                    "the DPoP proof must carry the server's nonce (the DPoP-Nonce header).",
                    self.nonces.current(now),
                )
        jkt = key.thumbprint()
        # Remembered past the proof's acceptance window on either side of iat.
        expires_at = max(iat, now) + self.max_age + 1
        if not await self.replay.first_use(f"dpop:{jkt}:{jti}", expires_at):
            raise InvalidDpopProof("this DPoP proof was used before: make a new one per request.")
        return Proof(jkt)

    def _header_and_key(self, proof: str) -> tuple[dict[str, Any], Any]:
        try:
            header = jws.extract_compact(proof.encode("ascii"), registry=_REGISTRY).protected
        except MALFORMED_JOSE:
            raise InvalidDpopProof("the DPoP proof is not a compact JWS.") from None
        if header.get("typ") != "dpop+jwt":
            raise InvalidDpopProof("the DPoP proof's typ must be dpop+jwt.")
        if header.get("alg") not in self.algorithms:
            raise InvalidDpopProof(
                f"the DPoP proof's alg must be one of {', '.join(self.algorithms)}."
            )
        public = header.get("jwk")
        if not isinstance(public, dict) or any(p in public for p in _PRIVATE_PARAMETERS):
            raise InvalidDpopProof("the DPoP proof's header must carry the public jwk only.")
        if public.get("kty") not in ("EC", "RSA", "OKP"):
            raise InvalidDpopProof("the DPoP proof's jwk must be an EC, RSA or OKP key.")
        try:
            key = import_key(public)
        except MALFORMED_JOSE:
            raise InvalidDpopProof("the DPoP proof's jwk is not a valid key.") from None
        return header, key


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
