"""Every knob Grantly has, read from ``GRANTLY_*`` environment variables.

Nothing else in the code reads the environment: the settings object is built once by the CLI
(or a test) and handed to ``create_app``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url


def async_database_url(url: str) -> str:
    """Turn a SQLAlchemy-style URL into one with the async driver Grantly runs on.

    ``sqlite:///x.db`` -> ``sqlite+aiosqlite:///x.db``; ``postgresql://`` (or ``postgres://``)
    -> ``postgresql+asyncpg://``. A URL that already names a driver is kept as written.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if parsed.drivername == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if parsed.drivername in ("postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    return url


class Settings(BaseSettings):
    """Grantly's configuration. Every field maps to ``GRANTLY_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="GRANTLY_", extra="ignore")

    env: Literal["production", "development", "test"] = "production"
    data_dir: Path = Field(default=Path(".grantly"))
    database_url: str = "sqlite:///grantly.db"
    # PostgreSQL: the most connections each worker opens (asyncpg's pool); unset: 16. SQLite
    # has no pool (one connection for reads, one for writes per worker).
    database_pool_size: int | None = Field(default=None, gt=0, le=200)
    issuer: str = "http://127.0.0.1:8000"
    secret_key: str | None = None

    access_token_lifetime: int = Field(default=3600, gt=0, description="seconds")
    refresh_token_lifetime: int = Field(default=7 * 24 * 3600, gt=0, description="seconds")
    # RFC 9700 §4.14.2 with a grace period, as Hydra and Okta offer: for this many seconds
    # after its rotation a refresh token may be presented again (a client that lost the
    # response retries) and gets a new pair instead of revoking the grant. 0 turns it off.
    refresh_token_grace_period: int = Field(default=0, ge=0, le=300, description="seconds")
    authorization_code_lifetime: int = Field(default=600, gt=0, le=600, description="seconds")
    session_lifetime: int = Field(default=12 * 3600, gt=0, description="seconds")
    # Days an audit event is kept; `grantly tokens prune` removes older ones.
    audit_retention_days: int = Field(default=365, ge=1, le=100 * 365, description="days")

    log_format: Literal["json", "console"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    redis_url: str | None = None
    redis_key_prefix: str = "grantly"
    # Failures counted by the throttle (grantly/throttle.py; SECURITY.md says why nobody can
    # lock out someone else). Sign-in from a browser the account was not used on: per account
    # and address, per address, per account; from a known browser: per device only.
    sign_in_limit_per_account_address: str = "10/15 minutes"
    sign_in_limit_per_address: str = "50/15 minutes"
    sign_in_limit_per_account: str = "30/15 minutes"
    sign_in_limit_per_device: str = "10/15 minutes"
    # Client authentication: a correct credential is always served; failures from an address.
    client_auth_limit_per_client_address: str = "20/minute"
    client_auth_limit_per_address: str = "100/minute"
    # The Bearer token Prometheus sends to /metrics; unset, only loopback peers are answered.
    metrics_token: SecretStr | None = None
    scopes: str = "read write"
    allow_plain_pkce: bool = False
    token_query_parameters: bool = True
    max_parameter_length: int = Field(default=2048, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    # Slow clients (`grantly serve`; README, "Running in production"). A request's headers
    # must arrive within header_timeout of its first byte (of the connection's opening, for
    # its first request), its body within body_timeout of its headers: 408 otherwise (RFC 9110
    # §15.5.9). An idle kept-alive connection closes after keep_alive_timeout. Each worker
    # serves at most max_connections connections at once; a request arriving while more are
    # open gets 503.
    header_timeout: float = Field(default=10, gt=0, le=300, description="seconds")
    body_timeout: float = Field(default=30, gt=0, le=600, description="seconds")
    keep_alive_timeout: int = Field(default=5, ge=1, le=300, description="seconds")
    max_connections: int = Field(default=1000, ge=1, le=100_000)
    # Client metadata documents may be fetched from loopback addresses: for tests that run a
    # document server on 127.0.0.1 (grantly/outbound.py). Refused in production.
    cimd_allow_loopback: bool = False
    # RFC 9449 §8, §9: DPoP proofs must carry a nonce the server issued (DPoP-Nonce), which
    # limits a proof made in advance by someone who got hold of a client's key for a while.
    dpop_nonces: bool = False
    # Dynamic client registration (RFC 7591) at /oauth/register: open to anyone, only with an
    # initial access token an operator minted (`grantly registration-tokens create`), or off.
    registration: Literal["open", "token", "off"] = "open"
    # Registrations accepted from one address (a registration costs its author nothing).
    registration_limit_per_address: str = "20/hour"
    # Client metadata documents fetched on behalf of one address (first uses and refetches).
    cimd_fetch_limit_per_address: str = "60/hour"
    # Grantly's API as an MCP server at /mcp (grantly/mcp/).
    mcp: bool = True

    @field_validator(
        "sign_in_limit_per_account_address",
        "sign_in_limit_per_address",
        "sign_in_limit_per_account",
        "sign_in_limit_per_device",
        "client_auth_limit_per_client_address",
        "client_auth_limit_per_address",
        "registration_limit_per_address",
        "cimd_fetch_limit_per_address",
    )
    @classmethod
    def _is_a_limit(cls, value: str) -> str:
        from limits import parse

        parse(value)  # "10/15 minutes"; raises ValueError with what is wrong
        return value

    @model_validator(mode="after")
    def _no_loopback_fetches_in_production(self) -> Settings:
        if self.cimd_allow_loopback and self.env == "production":
            raise ValueError(
                "GRANTLY_CIMD_ALLOW_LOOPBACK=true lets a client make Grantly fetch from this "
                "machine's own addresses; it is for tests and cannot be set when "
                "GRANTLY_ENV=production."
            )
        return self

    @field_validator("issuer")
    @classmethod
    def _issuer_has_no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def async_database_url(self) -> str:
        return async_database_url(self.database_url)

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")

    @property
    def scope_names(self) -> tuple[str, ...]:
        return tuple(self.scopes.replace(",", " ").split())

    def resolved_secret_key(self) -> str:
        """The key that signs session cookies.

        When ``GRANTLY_SECRET_KEY`` is unset, a random key is generated once and kept in
        ``<data_dir>/secret_key`` (mode 0600) so that sessions survive restarts.
        """
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(key)
        return key
