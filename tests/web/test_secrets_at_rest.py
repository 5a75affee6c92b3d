"""Secrets, codes and tokens exist in the database only as digests (RFC 9700 §4.14)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from grantly.oauth.secrets import digest
from tests.conftest import World, csrf_of, dump_database, exchange, obtain_code, sign_in


def _dump(world: World) -> str:
    return dump_database(world.settings)


def test_no_raw_secret_code_or_token_is_stored_after_a_full_flow(
    client: TestClient, world: World
) -> None:
    code = obtain_code(client, world)
    tokens = exchange(client, world.app, code).json()
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(world.app.client_id, world.app.client_secret or ""),
    ).json()
    page = client.get(f"/oauth/applications/{world.app.id}")
    regenerated = client.post(
        f"/oauth/applications/{world.app.id}/secret",
        data={"csrf_token": csrf_of(page.text), "confirmed": "yes"},
    )
    new_secret = re.search(r'id="client-secret">([^<]+)<', regenerated.text).group(1)
    session_cookie = client.cookies.get("grantly_session")

    dump = _dump(world)
    raw_values = [
        code,
        tokens["access_token"],
        tokens["refresh_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
        world.app.client_secret,
        new_secret,
        world.admin.password,
    ]
    for value in raw_values:
        assert value and value not in dump, value[:8]
    # What is stored is the digest, so lookups work.
    assert digest(tokens["access_token"]) in dump
    assert digest(new_secret) in dump
    assert session_cookie and session_cookie not in dump


def test_passwords_are_stored_as_argon2id_hashes(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    dump = _dump(world)
    assert world.admin.password not in dump
    assert "$argon2id$" in dump
