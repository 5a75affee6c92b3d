"""Factorial's two Python SDKs, pointed at a live ``grantly serve`` with only the base URL
changed (docs/factorial-api.md). Credentials are obtained as integrations obtain them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.api.conftest import company_token, create_employee, dashboard_api_key, token_response
from tests.conftest import LiveServer

COLLEAGUES = 5  # with the admin and the employee: 7 people, so that pages of 2 span 4 pages


@dataclass
class SdkWorld:
    live: LiveServer
    user_tokens: dict[str, object]  # the employee's token response (has a refresh token)
    company_token: str
    api_key: str
    company_a_ids: list[int]

    @property
    def url(self) -> str:
        return self.live.url

    def credential(self, kind: str) -> str:
        return {
            "user token": str(self.user_tokens["access_token"]),
            "company token": self.company_token,
            "API key": self.api_key,
        }[kind]


CREDENTIAL_KINDS = ["user token", "company token", "API key"]


@pytest.fixture
def sdk(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[SdkWorld]:
    # factorial-api-client prefers these over its arguments (docs/factorial-api.md §1.2).
    for name in ("FACTORIAL_API_KEY", "FACTORIAL_TOKEN", "FACTORIAL_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    world = live_server.world
    extra = [
        create_employee(world, world.company_a, f"colleague{n}@acme.example", first_name=f"C{n}").id
        for n in range(COLLEAGUES)
    ]
    with httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=10) as browser:
        yield SdkWorld(
            live=live_server,
            user_tokens=token_response(browser, world.employee, world.app),
            company_token=company_token(browser, world.admin, world.app),
            api_key=dashboard_api_key(browser, world.admin),
            company_a_ids=sorted([world.admin.id, world.employee.id, *extra]),
        )
