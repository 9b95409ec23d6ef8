"""Settings: a TOML file, overridden by GATEWAY_* variables; derived defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import Settings


def test_settings_come_from_the_toml_file_and_variables_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "gateway.toml"
    toml.write_text(
        'smtp_port = 2626\nintake_addresses = ["Support@Acme.example", "soc@acme.example"]\n'
        'soc_phone = "+49 69 1234"\n'
    )
    monkeypatch.setenv("GATEWAY_CONFIG", str(toml))
    settings = Settings()
    assert settings.smtp_port == 2626
    assert settings.intake_addresses == ("support@acme.example", "soc@acme.example")
    assert settings.soc_phone == "+49 69 1234"
    monkeypatch.setenv("GATEWAY_SMTP_PORT", "2727")
    monkeypatch.setenv("GATEWAY_INTAKE_ADDRESSES", "a@x.example, B@y.example")
    settings = Settings()
    assert settings.smtp_port == 2727
    assert settings.intake_addresses == ("a@x.example", "b@y.example")


def test_defaults_put_everything_under_var(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "v")
    assert settings.database == f"sqlite:///{tmp_path / 'v' / 'gateway.db'}"
    assert settings.outbound == f"maildir:{tmp_path / 'v' / 'outbound'}"
    assert settings.broker_url == ""
    assert settings.imap_url == ""


def test_the_signing_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings(var_dir=tmp_path).hmac_keys
    assert first == Settings(var_dir=tmp_path).hmac_keys
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    rotated = Settings(var_dir=tmp_path, secret_key="new, old").hmac_keys
    assert list(rotated.values()) == [b"new", b"old"]


def test_passwords_are_hidden_when_settings_are_shown() -> None:
    shown = Settings(
        imap_url="imap://soc:s3cret@imap.example/INBOX",
        database_url="postgresql://gw:pw@db/gw",
        secret_key="k",
    ).redacted()
    assert "s3cret" not in str(shown)
    assert "pw@" not in str(shown)
    assert shown["secret_key"] == "***"
