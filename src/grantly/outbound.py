"""Requests Grantly itself makes to addresses a client chose (client metadata documents; later
JWKS URIs), hardened against server-side request forgery (RFC 9700 §4.17 on SSRF; the client
ID metadata document draft's security considerations).

A client names the URL, so nothing about it is trusted: https only; the host's addresses are
resolved first and every one of them must be a public unicast address (no private, loopback,
link-local, shared, reserved or multicast address, IPv4-mapped ones included), and the
connection goes to the address that was checked, so a second DNS answer cannot swap it
(DNS rebinding), while TLS still verifies the certificate for the host name; no redirects; one
deadline for the whole exchange; a small body cap, read as it arrives; JSON only. The CA
bundle is the system's, or the standard ``SSL_CERT_FILE``.

``allow_loopback`` lets tests run a document server on 127.0.0.1
(``GRANTLY_CIMD_ALLOW_LOOPBACK``, refused in production by the settings).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

# host, port -> every address the name resolves to.
Resolver = Callable[[str, int], Awaitable[list[str]]]

DEFAULT_TIMEOUT = 5.0
# Cache-Control max-age is honoured within these bounds (seconds): a document is fetched at
# most once a minute, and at least once a day.
MIN_CACHE_SECONDS = 60
MAX_CACHE_SECONDS = 24 * 3600
DEFAULT_CACHE_SECONDS = 300
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)


class FetchRefused(Exception):
    """The URL was not fetched, or its answer not used; the message says why, for the client
    (it never holds the body or a server's error)."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


def refusal(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why an address may not be connected to, or None when it is a public unicast one."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "it resolved to something that is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if allow_loopback else "it resolves to a loopback address"
    if ip.is_multicast:
        return "it resolves to a multicast address"
    if ip.is_link_local:
        return "it resolves to a link-local address"
    if ip.is_unspecified or ip.is_reserved:
        return "it resolves to a reserved address"
    if ip.is_private or not ip.is_global:
        return "it resolves to a private address"
    return None


@dataclass(frozen=True, slots=True)
class Fetched:
    document: object
    # Seconds the answer may be used for (Cache-Control, within bounds).
    max_age: int


def cache_seconds(cache_control: str | None) -> int:
    """RFC 9111 §5.2.2: no-store and no-cache mean fetch again soon; max-age within bounds."""
    if not cache_control:
        return DEFAULT_CACHE_SECONDS
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return MIN_CACHE_SECONDS
    found = _MAX_AGE.search(cache_control)
    if found is None:
        return DEFAULT_CACHE_SECONDS
    return max(MIN_CACHE_SECONDS, min(MAX_CACHE_SECONDS, int(found.group(1))))


class JsonFetcher:
    """Fetches a small JSON document from a URL a client named."""

    def __init__(
        self,
        *,
        max_bytes: int,
        allow_loopback: bool = False,
        resolver: Resolver = system_resolver,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.max_bytes = max_bytes
        self.allow_loopback = allow_loopback
        self.resolver = resolver
        self.timeout = timeout
        # Built once: the system's CAs, or SSL_CERT_FILE's (OpenSSL reads it).
        self.ssl_context = ssl.create_default_context()

    async def fetch(self, url: str) -> Fetched:
        try:
            return await asyncio.wait_for(self._fetch(url), self.timeout)
        except TimeoutError:
            raise FetchRefused(f"it did not answer within {self.timeout:g} seconds") from None

    async def _fetch(self, url: str) -> Fetched:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise FetchRefused("only https URLs are fetched")
        host = parts.hostname
        port = parts.port or 443
        try:
            addresses = await self.resolver(host, port)
        except OSError:
            raise FetchRefused("its host name does not resolve") from None
        except (UnicodeError, ValueError):  # IDNA: an empty or over-long label
            raise FetchRefused("its host name is not valid") from None
        if not addresses:
            raise FetchRefused("its host name does not resolve")
        # Every address must be allowed: a name that also resolves to an internal address
        # could be answered with that one by the next lookup.
        for address in addresses:
            reason = refusal(address, allow_loopback=self.allow_loopback)
            if reason is not None:
                raise FetchRefused(reason)
        address = addresses[0].split("%", 1)[0]
        literal = f"[{address}]" if ":" in address else address
        pinned = urlunsplit(("https", f"{literal}:{port}", parts.path, parts.query, ""))
        headers = {
            "Host": parts.netloc.rsplit("@", 1)[-1],
            "Accept": "application/json",
            # The cap is on the bytes that arrive, and a compressed body would be unpacked.
            "Accept-Encoding": "identity",
            "User-Agent": "Grantly",
        }
        async with httpx.AsyncClient(
            verify=self.ssl_context, follow_redirects=False, trust_env=False, timeout=self.timeout
        ) as client:
            try:
                async with client.stream(
                    "GET", pinned, headers=headers, extensions={"sni_hostname": host}
                ) as response:
                    return await self._read(response)
            except httpx.HTTPError as exc:
                if isinstance(exc.__cause__, ssl.SSLError) or "CERTIFICATE" in str(exc).upper():
                    raise FetchRefused("its TLS certificate is not trusted") from None
                raise FetchRefused("it could not be reached") from None

    async def _read(self, response: httpx.Response) -> Fetched:
        if 300 <= response.status_code < 400:
            raise FetchRefused("it answered with a redirect, which is not followed")
        if response.status_code != 200:
            raise FetchRefused(f"it answered with HTTP status {response.status_code}")
        media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            raise FetchRefused("it is not JSON (its Content-Type is not application/json)")
        length = response.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            raise FetchRefused(f"it is larger than {self.max_bytes} bytes")
        body = bytearray()
        async for chunk in response.aiter_raw():
            body.extend(chunk)
            if len(body) > self.max_bytes:
                raise FetchRefused(f"it is larger than {self.max_bytes} bytes")
        if response.headers.get("content-encoding", "identity").lower() != "identity":
            raise FetchRefused("it is compressed; documents are fetched as they are")
        try:
            document = json.loads(body.decode("utf-8"))
            # A lone surrogate (\ud800) is valid JSON but no text: nothing could store it.
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except (UnicodeError, ValueError):
            raise FetchRefused("it is not valid JSON") from None
        return Fetched(document, cache_seconds(response.headers.get("cache-control")))
