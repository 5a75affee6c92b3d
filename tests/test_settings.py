"""Settings: database URLs get their async driver; the secret key is generated once and kept."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from grantly.settings import Settings, async_database_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///relative.db", "sqlite+aiosqlite:///relative.db"),
        ("sqlite:////absolute/path.db", "sqlite+aiosqlite:////absolute/path.db"),
        ("postgresql://user@host/db", "postgresql+asyncpg://user@host/db"),
        ("postgres://user:pw@host:5433/db", "postgresql+asyncpg://user:pw@host:5433/db"),
        ("postgresql+asyncpg://h/db", "postgresql+asyncpg://h/db"),
    ],
)
def test_database_urls_get_the_async_driver(given: str, expected: str) -> None:
    assert async_database_url(given) == expected


def test_an_unsupported_database_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        async_database_url("mysql://root@localhost/db")


def test_the_secret_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", secret_key=None)
    first = settings.resolved_secret_key()
    assert len(first) >= 40
    assert Settings(data_dir=tmp_path / "data").resolved_secret_key() == first
    mode = (tmp_path / "data" / "secret_key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_an_explicit_secret_key_wins(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path, secret_key="k" * 40).resolved_secret_key() == "k" * 40
    assert not (tmp_path / "secret_key").exists()


def test_settings_come_from_grantly_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRANTLY_ISSUER", "https://auth.example/")
    monkeypatch.setenv("GRANTLY_ACCESS_TOKEN_LIFETIME", "7200")
    settings = Settings()
    assert settings.issuer == "https://auth.example"
    assert settings.access_token_lifetime == 7200
    assert settings.secure_cookies


def test_a_code_lifetime_over_ten_minutes_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRANTLY_AUTHORIZATION_CODE_LIFETIME", "601")
    with pytest.raises(ValueError):
        Settings()


def test_loopback_document_fetches_are_refused_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRANTLY_CIMD_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("GRANTLY_ENV", "production")
    with pytest.raises(ValueError, match="cannot be set when GRANTLY_ENV=production"):
        Settings()
    monkeypatch.setenv("GRANTLY_ENV", "test")
    assert Settings().cimd_allow_loopback
