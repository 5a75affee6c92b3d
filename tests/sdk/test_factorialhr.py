"""factorialhr 7.0.0 (async, pydantic) against a live Grantly: its models validate every
answer, its ``all()`` fetches offset pages concurrently, and its refreshing auth renews an
access token it believes expired (docs/factorial-api.md §6.1, §7)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import factorialhr
import httpx
import pytest

from tests.sdk.conftest import CREDENTIAL_KINDS, SdkWorld

pytestmark = pytest.mark.live


class PortPreservingRefreshTokenAuth(factorialhr.RefreshTokenAuth):
    """factorialhr 7.0.0 posts the refresh to f"{scheme}://{host}/oauth/token" and so drops
    any non-default port (docs/factorial-api.md §7.3); send it to the real base URL instead."""

    def __init__(self, *args: Any, token_base_url: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.token_base_url = token_base_url.rstrip("/")

    async def refresh_access_token(self, target_url: str) -> None:
        await super().refresh_access_token(self.token_base_url)


def _auth(sdk: SdkWorld, kind: str) -> httpx.Auth:
    credential = sdk.credential(kind)
    if kind == "API key":
        return factorialhr.ApiKeyAuth(credential)
    return factorialhr.AccessTokenAuth(credential)


async def _everyone_and_credential(
    url: str, auth: httpx.Auth, **params: Any
) -> tuple[list[factorialhr.Employee], factorialhr.Credentials]:
    async with factorialhr.ApiClient(url, auth=auth) as api:
        employees = await factorialhr.EmployeesEndpoint(api).all(params=params)
        credentials = await factorialhr.CredentialsEndpoint(api).get()
        return list(employees.data()), next(iter(credentials.data()))


@pytest.mark.parametrize("kind", CREDENTIAL_KINDS)
def test_factorialhr_lists_employees_and_reads_its_credential(sdk: SdkWorld, kind: str) -> None:
    employees, credential = asyncio.run(_everyone_and_credential(sdk.url, _auth(sdk, kind)))
    assert [e.id for e in employees] == sdk.company_a_ids
    assert all(isinstance(e.created_at, dt.datetime) for e in employees)
    assert credential.company_id == sdk.live.world.company_a
    if kind == "user token":
        assert credential.id.startswith("access_token_")
        assert credential.employee_id == sdk.live.world.employee.id
    else:
        assert credential.employee_id is None


def test_factorialhr_fetches_small_pages_concurrently_without_gaps(sdk: SdkWorld) -> None:
    employees, _ = asyncio.run(_everyone_and_credential(sdk.url, _auth(sdk, "API key"), limit=2))
    assert [e.id for e in employees] == sdk.company_a_ids


def test_factorialhr_filters_with_array_parameters(sdk: SdkWorld) -> None:
    wanted = sdk.company_a_ids[1:3]

    async def run() -> factorialhr.MetaApiResponse[factorialhr.Employee]:
        async with factorialhr.ApiClient(sdk.url, auth=_auth(sdk, "company token")) as api:
            return await factorialhr.EmployeesEndpoint(api).get(
                params={"ids[]": wanted, "only_active": "true", "limit": 1}
            )

    page = asyncio.run(run())
    assert [e.id for e in page.data()] == wanted[:1]
    assert page.meta.total == 2 and page.meta.has_next_page is True


def test_factorialhr_reads_updates_and_terminates_an_employee(sdk: SdkWorld) -> None:
    target = sdk.company_a_ids[-1]

    async def run() -> tuple[factorialhr.Employee, ...]:
        async with factorialhr.ApiClient(sdk.url, auth=_auth(sdk, "API key")) as api:
            endpoint = factorialhr.EmployeesEndpoint(api)
            return (
                await endpoint.get_by_id(target),
                await endpoint.update(target, {"first_name": "New", "bank_number": "ES12"}),
                await endpoint.terminate(
                    {"id": target, "terminated_on": "2025-12-31", "termination_reason": "x"}
                ),
            )

    read, updated, terminated = asyncio.run(run())
    assert read.id == target and updated.first_name == "New" and updated.bank_number == "ES12"
    assert terminated.terminated_on == dt.date(2025, 12, 31) and terminated.active is False


def test_factorialhr_refreshing_auth_renews_an_expired_access_token(sdk: SdkWorld) -> None:
    """factorialhr decides expiry from ``created_at`` + 1 hour on its own clock: an auth
    object created two hours ago refreshes before its first request (client_secret_post,
    RFC 6749 §6), keeps the rotated refresh token, and sends the new access token."""
    world = sdk.live.world
    first = sdk.user_tokens
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        if request.url.path.startswith("/api/"):
            sent.append(request.headers["authorization"])

    auth = PortPreservingRefreshTokenAuth(
        refresh_token=str(first["refresh_token"]),
        client_id=world.app.client_id,
        client_secret=world.app.client_secret or "",
        access_token=str(first["access_token"]),
        token_type="Bearer",
        created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2),
        token_base_url=sdk.url,
    )

    async def run() -> tuple[list[factorialhr.Employee], factorialhr.Credentials]:
        async with factorialhr.ApiClient(
            sdk.url, auth=auth, event_hooks={"request": [record]}
        ) as api:
            employees = await factorialhr.EmployeesEndpoint(api).all()
            credentials = await factorialhr.CredentialsEndpoint(api).get()
            return list(employees.data()), next(iter(credentials.data()))

    employees, credential = asyncio.run(run())
    assert auth.access_token != first["access_token"]
    assert auth.refresh_token != first["refresh_token"]  # rotated, and kept
    assert abs(auth.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert sent and set(sent) == {f"Bearer {auth.access_token}"}
    assert [e.id for e in employees] == sdk.company_a_ids
    assert credential.employee_id == world.employee.id
    # The presented refresh token is spent: using it again is refused (RFC 9700 §4.14.2).
    replay = httpx.post(
        f"{sdk.url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": str(first["refresh_token"]),
            "client_id": world.app.client_id,
            "client_secret": world.app.client_secret or "",
        },
    )
    assert replay.status_code == 400


def test_factorialhr_raises_on_a_revoked_api_key(sdk: SdkWorld) -> None:
    sdk.live.grantly("api-keys", "revoke", "--id", "1")

    async def run() -> None:
        async with factorialhr.ApiClient(sdk.url, auth=_auth(sdk, "API key")) as api:
            await factorialhr.EmployeesEndpoint(api).get()

    with pytest.raises(httpx.HTTPStatusError) as raised:
        asyncio.run(run())
    assert raised.value.response.status_code == 401
