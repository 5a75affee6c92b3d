"""Grantly's signing keys (grantly/keys.py, grantly/key_ring.py): made on first start, the
private half sealed under GRANTLY_SECRET_KEY, published at /oauth/jwks (RFC 7517) before they
sign, one active key for every process, rotation and retirement by `grantly keys`."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import KeySet
from typer.testing import CliRunner

from grantly import keys
from grantly.app import create_app
from grantly.cli import app as cli
from grantly.key_ring import KeyRing
from grantly.oauth.clock import FrozenClock
from grantly.store.database import open_database
from tests.conftest import World, dump_database, run_db


def _env(world: World) -> dict[str, str]:
    return {
        "GRANTLY_DATABASE_URL": world.settings.database_url,
        "GRANTLY_DATA_DIR": str(world.settings.data_dir),
        "GRANTLY_SECRET_KEY": world.settings.secret_key or "",
    }


def _grantly(world: World, *args: str) -> Any:
    result = CliRunner().invoke(cli, [*args, "--json"], env=_env(world))
    return result


@pytest.mark.parametrize("alg", keys.ALGORITHMS)
def test_a_key_signs_what_its_published_half_verifies(alg: keys.Algorithm) -> None:
    made = keys.generate(alg)
    assert "d" not in made.public_jwk and "p" not in made.public_jwk
    sealed = keys.seal(made.private_pem, "secret one")
    assert b"PRIVATE" not in sealed.encode() and made.private_pem.decode() not in sealed
    stored = keys.SigningKey(made.kid, alg, made.public_jwk, sealed, 0, 0)
    token = jws.serialize_compact(
        {"alg": alg, "kid": made.kid}, b"payload", keys.private_key(stored, "secret one")
    )
    key_set = KeySet.import_key_set(keys.published([stored]))
    assert jws.deserialize_compact(token, key_set).payload == b"payload"
    with pytest.raises(keys.KeyUnsealable):
        keys.unseal(sealed, "another secret")


def _key(kid: str, activates_at: int, created_at: int = 0, retired_at: int | None = None) -> Any:
    return keys.SigningKey(kid, "ES256", {}, "", created_at, activates_at, retired_at)


def test_the_active_key_is_the_last_to_activate_and_the_same_for_everyone() -> None:
    old, new, future = _key("a", 0), _key("b", 100, 50), _key("c", 1000, 60)
    assert keys.active([old, new, future], 99).kid == "a"
    assert keys.active([future, new, old], 100).kid == "b"
    assert keys.active([old, new, future], 1000).kid == "c"
    # Two first keys made at once by two processes: both pick the same.
    twins = [_key("x", 5, 5), _key("y", 5, 5)]
    assert keys.active(twins, 5).kid == keys.active(list(reversed(twins)), 5).kid == "y"
    assert keys.active([_key("r", 0, retired_at=1)], 5) is None


def test_retirement_waits_for_the_tokens_a_key_signed() -> None:
    old, new = _key("a", 0), _key("b", 100, 50)
    assert "signs now" in keys.retirement_refusal(old, [old], 10, 3600)
    assert "may be valid until 3700" in keys.retirement_refusal(old, [old, new], 200, 3600)
    assert keys.retirement_refusal(old, [old, new], 3700, 3600) is None
    assert keys.retirement_refusal(_key("f", 500), [old, _key("f", 500)], 10, 3600) is None


def test_jwks_is_published_and_named_in_the_metadata(world: World) -> None:
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1:8000") as http:
        metadata = http.get("/.well-known/oauth-authorization-server").json()
        assert metadata["jwks_uri"] == "http://127.0.0.1:8000/oauth/jwks"
        response = http.get("/oauth/jwks")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/jwk-set+json")
        body = response.json()
        assert len(body["keys"]) == 1
        (key,) = body["keys"]
        assert key["alg"] == "ES256" and key["use"] == "sig" and key["kty"] == "EC"
        assert "d" not in key
        assert http.get("/oauth/jwks").json() == body  # made once
    dump = dump_database(world.settings)
    assert "BEGIN PRIVATE KEY" not in dump
    # The private scalar is nowhere in clear.
    ring = KeyRing(
        open_database(world.settings.database_url),
        world.settings.secret_key or "",
        FrozenClock(int(time.time()) + 1),
    )

    async def private_d() -> str:
        _signing, private = await ring.signer()
        await ring.db.close()
        return str(private.as_dict(private=True)["d"])

    import asyncio

    assert asyncio.run(private_d()) not in dump


def test_rotation_publishes_before_signing_and_retirement_is_guarded(world: World) -> None:
    first = _grantly(world, "keys", "list")
    assert first.exit_code == 0, first.output
    (original,) = json.loads(first.stdout)["keys"]
    assert original["status"] == "active"

    rotated = _grantly(world, "keys", "rotate", "--activate-after", "600", "--alg", "RS256")
    assert rotated.exit_code == 0, rotated.output
    new_kid = json.loads(rotated.stdout)["kid"]
    listed = {
        k["kid"]: k["status"] for k in json.loads(_grantly(world, "keys", "list").stdout)["keys"]
    }
    assert listed == {original["kid"]: "active", new_kid: "published"}
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1:8000") as http:
        published = {k["kid"]: k["alg"] for k in http.get("/oauth/jwks").json()["keys"]}
    assert published == {original["kid"]: "ES256", new_kid: "RS256"}

    refused = _grantly(world, "keys", "retire", "--kid", original["kid"])
    assert refused.exit_code == 1
    assert "signs now" in refused.stderr
    assert _grantly(world, "keys", "retire", "--kid", "nope").exit_code == 1
    forced = _grantly(world, "keys", "retire", "--kid", new_kid, "--force")
    assert forced.exit_code == 0, forced.output
    with TestClient(create_app(world.settings), base_url="http://127.0.0.1:8000") as http:
        assert [k["kid"] for k in http.get("/oauth/jwks").json()["keys"]] == [original["kid"]]


def test_bad_options_are_refused(world: World) -> None:
    assert _grantly(world, "keys", "rotate", "--alg", "HS256").exit_code == 2
    assert _grantly(world, "keys", "rotate", "--activate-after", "-1").exit_code == 2
    assert run_db is not None
