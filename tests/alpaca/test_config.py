"""Credentials never leak through repr/str/logging, and come only from env or a named file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from adapters.alpaca.config import AlpacaConfig, ConfigError, Credentials

KEY = "PKTESTKEY1234567890"
SECRET = "s3cr3t-very-secret-value-XYZ"


def test_repr_and_str_mask_both_halves() -> None:
    creds = Credentials(key_id=KEY, secret_key=SECRET)
    for text in (repr(creds), str(creds), f"{creds}", repr(AlpacaConfig(credentials=creds))):
        assert SECRET not in text
        assert KEY not in text
    assert "7890" in repr(creds)  # last 4 of the key id help tell accounts apart


def test_logging_a_config_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    config = AlpacaConfig.for_account(Credentials(key_id=KEY, secret_key=SECRET), paper=False)
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("config %s %r", config, config)
    assert SECRET not in caplog.text and KEY not in caplog.text
    assert config.trading_url == "https://api.alpaca.markets"


def test_from_env_requires_both() -> None:
    creds = Credentials.from_env({"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET})
    assert creds.headers() == {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
    with pytest.raises(ConfigError, match="APCA_API_SECRET_KEY"):
        Credentials.from_env({"APCA_API_KEY_ID": KEY})


def test_from_file(tmp_path: Path) -> None:
    path = tmp_path / "creds.toml"
    path.write_text(f'[alpaca]\nkey_id = "{KEY}"\nsecret_key = "{SECRET}"\n')
    assert Credentials.from_file(path).secret_key == SECRET
    path.write_text(f'[alpaca]\nkey_id = "{KEY}"\nsecret_key = "{SECRET}"\nextra = 1\n')
    with pytest.raises(ConfigError, match="unknown keys"):
        Credentials.from_file(path)
    with pytest.raises(ConfigError) as info:
        Credentials.from_file(tmp_path / "missing.toml")
    assert SECRET not in str(info.value)


def test_urls_for_base_url_and_bad_trailing_slash() -> None:
    creds = Credentials(key_id=KEY, secret_key=SECRET)
    config = AlpacaConfig.for_base_url(creds, "http://127.0.0.1:8000/", feed="sip")
    assert config.trading_stream_url == "ws://127.0.0.1:8000/stream"
    assert config.data_stream_url == "ws://127.0.0.1:8000/v2/sip"
    with pytest.raises(ConfigError):
        AlpacaConfig(credentials=creds, trading_url="https://x/")
    with pytest.raises(ConfigError):
        AlpacaConfig.for_account(creds, feed="nope")
