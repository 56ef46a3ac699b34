"""Where the Alpaca adapter finds its credentials and base URLs (paper, live, data, streams).

Secrets come only from the environment or a file the user names, and never appear in a repr or a log.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENV_KEY_ID = "APCA_API_KEY_ID"
ENV_SECRET_KEY = "APCA_API_SECRET_KEY"

PAPER_TRADING_URL = "https://paper-api.alpaca.markets"
LIVE_TRADING_URL = "https://api.alpaca.markets"
DATA_URL = "https://data.alpaca.markets"
PAPER_TRADING_STREAM_URL = "wss://paper-api.alpaca.markets/stream"
LIVE_TRADING_STREAM_URL = "wss://api.alpaca.markets/stream"
DATA_STREAM_BASE_URL = "wss://stream.data.alpaca.markets/v2"
DATA_FEEDS = frozenset({"iex", "sip", "delayed_sip", "test"})


class ConfigError(ValueError):
    """The user's credentials or URLs are missing or malformed."""


def _mask(secret: str) -> str:
    # why: the last 4 characters of a key id help an operator tell accounts apart; secrets show nothing.
    return "****" if len(secret) <= 8 else f"****{secret[-4:]}"


@dataclass(frozen=True, slots=True)
class Credentials:
    """An API key pair. ``repr``/``str`` mask both halves so a stray log line leaks nothing."""

    key_id: str = field(repr=False)
    secret_key: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.key_id or not self.secret_key:
            raise ConfigError("Alpaca credentials need both a key id and a secret key")

    def __repr__(self) -> str:
        return f"Credentials(key_id={_mask(self.key_id)!r}, secret_key='****')"

    __str__ = __repr__

    def headers(self) -> dict[str, str]:
        return {"APCA-API-KEY-ID": self.key_id, "APCA-API-SECRET-KEY": self.secret_key}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        source = os.environ if env is None else env
        key_id = source.get(ENV_KEY_ID, "")
        secret = source.get(ENV_SECRET_KEY, "")
        if not key_id or not secret:
            raise ConfigError(f"set {ENV_KEY_ID} and {ENV_SECRET_KEY} (or point to a credentials file)")
        return cls(key_id=key_id, secret_key=secret)

    @classmethod
    def from_file(cls, path: str | Path) -> Credentials:
        """A TOML file with ``key_id`` and ``secret_key`` (top level or under ``[alpaca]``)."""
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read credentials file {path}: {exc.__class__.__name__}") from None
        table = data.get("alpaca", data)
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [alpaca] must be a table")
        unknown = sorted(set(table) - {"key_id", "secret_key"})
        if unknown:
            raise ConfigError(f"{path}: unknown keys {unknown}")
        key_id, secret = table.get("key_id"), table.get("secret_key")
        if not isinstance(key_id, str) or not isinstance(secret, str):
            raise ConfigError(f"{path}: key_id and secret_key must be strings")
        return cls(key_id=key_id, secret_key=secret)


@dataclass(frozen=True, slots=True)
class AlpacaConfig:
    """Endpoints for one account. Every URL is overridable (fake venue, loopback server, sandbox)."""

    credentials: Credentials
    paper: bool = True
    trading_url: str = PAPER_TRADING_URL
    data_url: str = DATA_URL
    trading_stream_url: str = PAPER_TRADING_STREAM_URL
    data_stream_url: str = f"{DATA_STREAM_BASE_URL}/iex"

    def __post_init__(self) -> None:
        for name in ("trading_url", "data_url", "trading_stream_url", "data_stream_url"):
            url: str = getattr(self, name)
            if url.endswith("/"):
                raise ConfigError(f"{name} must not end with '/': {url!r}")

    @classmethod
    def for_account(
        cls, credentials: Credentials, *, paper: bool = True, feed: str = "iex"
    ) -> AlpacaConfig:
        if feed not in DATA_FEEDS:
            raise ConfigError(f"unknown data feed {feed!r}; one of {sorted(DATA_FEEDS)}")
        return cls(
            credentials=credentials,
            paper=paper,
            trading_url=PAPER_TRADING_URL if paper else LIVE_TRADING_URL,
            trading_stream_url=PAPER_TRADING_STREAM_URL if paper else LIVE_TRADING_STREAM_URL,
            data_stream_url=f"{DATA_STREAM_BASE_URL}/{feed}",
        )

    @classmethod
    def for_base_url(cls, credentials: Credentials, base_url: str, *, feed: str = "iex") -> AlpacaConfig:
        """One host serving everything, like the loopback fake (``http://127.0.0.1:PORT``)."""
        base = base_url.rstrip("/")
        ws_base = "ws" + base[len("http") :] if base.startswith("http") else base
        return cls(
            credentials=credentials,
            paper=True,
            trading_url=base,
            data_url=base,
            trading_stream_url=f"{ws_base}/stream",
            data_stream_url=f"{ws_base}/v2/{feed}",
        )

