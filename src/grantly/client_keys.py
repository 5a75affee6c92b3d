"""The public keys of ``private_key_jwt`` clients (``oauth.ports.ClientKeys``; RFC 7523 §2.2,
OpenID Connect Core §10.1): the JWK Set an admin registered with the application, or the one
its ``jwks_uri`` serves, fetched by the SSRF-hardened fetcher (``grantly.outbound``: https,
public addresses only, no redirects, a size cap and a deadline), kept for as long as its
Cache-Control allows within the fetcher's bounds. A key id the kept set lacks makes it fetched
again, at most once a minute (``outbound.MIN_CACHE_SECONDS``), so a client that rotated its
keys is heard at once while nobody can make Grantly fetch in a loop.
"""

from __future__ import annotations

import json
from typing import Any

from .oauth.clock import Clock
from .oauth.errors import InvalidClient
from .oauth.models import Application
from .oauth.registration import jwks_problem
from .outbound import MIN_CACHE_SECONDS, FetchRefused, JsonFetcher

MAX_JWKS_BYTES = 64 * 1024
MAX_CACHED = 1000


class ClientKeys:
    def __init__(self, fetcher: JsonFetcher, clock: Clock) -> None:
        self.fetcher = fetcher
        self.clock = clock
        # jwks_uri -> (fetched at, usable until, key set)
        self._cache: dict[str, tuple[int, int, dict[str, Any]]] = {}
        # jwks_uri -> (until when, why): a failed fetch is not tried again for a minute, so
        # nobody who knows the client_id can make every request wait on an unreachable host.
        self._failed: dict[str, tuple[int, str]] = {}

    async def key_set(self, application: Application, refresh: bool = False) -> dict[str, Any]:
        if application.jwks is not None:
            registered: dict[str, Any] = json.loads(application.jwks)
            return registered
        uri = application.jwks_uri
        if uri is None:
            raise InvalidClient("this application has no public keys registered.")
        now = self.clock.now()
        cached = self._cache.get(uri)
        if cached is not None:
            fetched_at, until, document = cached
            if now < until and not (refresh and now - fetched_at >= MIN_CACHE_SECONDS):
                return document
        failed = self._failed.get(uri)
        if failed is not None and now < failed[0]:
            raise InvalidClient(failed[1])
        try:
            fetched = await self.fetcher.fetch(uri)
        except FetchRefused as refused:
            raise self._failure(
                uri, now, f"the client's jwks_uri could not be used: {refused}."
            ) from None
        text = json.dumps(fetched.document)
        problem = jwks_problem(text) if len(text) <= MAX_JWKS_BYTES else "it is too large"
        if problem is not None:
            raise self._failure(
                uri, now, f"the client's jwks_uri does not serve a usable JWK Set: {problem}"
            )
        self._failed.pop(uri, None)
        if len(self._cache) >= MAX_CACHED:
            self._cache.pop(next(iter(self._cache)))
        document = dict(fetched.document)  # type: ignore[call-overload]
        self._cache[uri] = (now, now + fetched.max_age, document)
        return document

    def _failure(self, uri: str, now: int, message: str) -> InvalidClient:
        if len(self._failed) >= MAX_CACHED:
            self._failed.pop(next(iter(self._failed)))
        self._failed[uri] = (now + MIN_CACHE_SECONDS, message)
        return InvalidClient(message)
