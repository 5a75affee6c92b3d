"""Generation and digests of every secret Grantly hands out.

Client secrets, authorization codes, access and refresh tokens and invitation links are 256-bit
random values from ``secrets``; only their SHA-256 digests are stored (RFC 9700 §4.14 and §2.4:
a leaked database must not yield usable credentials). Because the values are high-entropy, a
fast unsalted digest is enough and lets storage look a token up by its digest in one indexed
read. Comparisons are constant-time (``hmac.compare_digest``).

Each kind has a short prefix so that secret scanners and people can tell them apart.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

ACCESS_TOKEN_PREFIX = "gat_"
REFRESH_TOKEN_PREFIX = "grt_"
AUTHORIZATION_CODE_PREFIX = "gac_"
CLIENT_SECRET_PREFIX = "gcs_"
API_KEY_PREFIX = "gak_"
INVITATION_PREFIX = "gin_"  # a one-time link to set a password
RESOURCE_SERVER_SECRET_PREFIX = "grs_"
REGISTRATION_ACCESS_TOKEN_PREFIX = "grg_"  # RFC 7592: manages one self-registered client
INITIAL_ACCESS_TOKEN_PREFIX = "gri_"  # RFC 7591 §3: lets its holder register clients
# A resource server's client_id starts with a character no application's can hold (those are
# ``token_urlsafe``: letters, digits, '-' and '_'), so introspection knows which table to read
# the caller from before reading anything: one statement, as for applications.
RESOURCE_SERVER_CLIENT_ID_PREFIX = "rs."


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def new_client_id() -> str:
    return secrets.token_urlsafe(24)


def new_resource_server_client_id() -> str:
    return RESOURCE_SERVER_CLIENT_ID_PREFIX + secrets.token_urlsafe(24)


def is_resource_server_client_id(client_id: str) -> bool:
    return client_id.startswith(RESOURCE_SERVER_CLIENT_ID_PREFIX)


def digest(value: str) -> str:
    """SHA-256 hex digest: what the database keeps instead of the value."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def matches(value: str, stored_digest: str) -> bool:
    """Constant-time check of a presented secret against a stored digest."""
    return hmac.compare_digest(digest(value), stored_digest)
