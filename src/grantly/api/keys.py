"""Creating API keys: the admins' operation shared by the dashboard and the CLI.

A key is a 256-bit random value with the ``gak_`` prefix (so that secret scanners know it);
only its SHA-256 digest is stored, with its first characters as a hint (RFC 9700 §4.14: a
copy of the database must yield no usable credential). It is shown once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..oauth.secrets import API_KEY_PREFIX, digest, new_secret
from ..store.api_keys import ApiKey
from ..store.unit import Store

MAX_NAME_LENGTH = 200
# The prefix and four random characters: enough to tell keys apart, useless to an attacker.
HINT_LENGTH = len(API_KEY_PREFIX) + 4


class InvalidApiKeyName(ValueError):
    pass


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    key: str  # shown once; only its digest is stored

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.api_key.id,
            "company_id": self.api_key.company_id,
            "name": self.api_key.name,
            "key": self.key,
            "hint": self.api_key.hint,
            "created_at": self.api_key.created_at,
        }


def validate_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidApiKeyName("give the API key a name, to recognise it later.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidApiKeyName(f"the name must be at most {MAX_NAME_LENGTH} characters.")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise InvalidApiKeyName("the name must not contain control characters.")
    return name


async def create_api_key(
    uow: Store, company_id: int, name: str, created_by: int | None, now: int
) -> CreatedApiKey:
    key = new_secret(API_KEY_PREFIX)
    api_key = await uow.api_keys.create(
        company_id=company_id,
        name=validate_name(name),
        digest=digest(key),
        hint=key[:HINT_LENGTH],
        created_by=created_by,
        now=now,
    )
    return CreatedApiKey(api_key, key)
