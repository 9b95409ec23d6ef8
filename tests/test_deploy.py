"""Running it for real: the service units in deploy/, and settings that do not depend on the
directory a command is started from once a configuration file says where things are."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.core.settings import load

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNITS = {
    "gateway.service": ["gateway", "smtp"],
    "gateway-clock.service": ["gateway", "clock"],
    "gateway-workers.service": ["dramatiq", "workers.main"],
}


def _unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / name)
    return unit


@pytest.mark.parametrize("name", list(UNITS))
def test_each_unit_runs_its_command_as_a_dedicated_user_with_the_settings_under_etc(
    name: str,
) -> None:
    service = _unit(name)["Service"]
    assert service["User"] == service["Group"] == "securecall"
    assert service["StateDirectory"] == "securecall-gateway"
    assert service["WorkingDirectory"] == "/var/lib/securecall-gateway"
    assert service["Restart"] == "on-failure"
    lines = (DEPLOY / name).read_text().splitlines()  # Environment= comes more than once
    assert "Environment=GATEWAY_CONFIG=/etc/securecall/gateway.toml" in lines
    program, *args = service["ExecStart"].split()
    assert [Path(program).name, *args[:1]] == UNITS[name]


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    venv_bin = Path(sys.executable).parent  # the programs the units name, from this install
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        (tmp_path / name).write_text(
            text.replace("/opt/securecall-gateway/.venv/bin", str(venv_bin))
        )
    result = subprocess.run(
        [analyze, "verify", *(str(tmp_path / n) for n in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_relative_var_dir_in_the_file_is_taken_from_the_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc = tmp_path / "etc" / "securecall"
    etc.mkdir(parents=True)
    (etc / "dkim.key").write_text("ignored\n")
    (etc / "gateway.toml").write_text(
        'var_dir = "state"\ndkim_key_file = "dkim.key"\ndkim_selector = "gw"\n'
    )
    monkeypatch.setenv("GATEWAY_CONFIG", str(etc / "gateway.toml"))
    for elsewhere in (tmp_path, Path("/")):
        monkeypatch.chdir(elsewhere)
        settings = load()
        assert settings.var_dir == etc / "state"
        assert settings.database == f"sqlite:///{etc / 'state' / 'gateway.db'}"
        assert settings.outbound == f"maildir:{etc / 'state' / 'outbound'}"
        assert settings.dkim_key_file == str(etc / "dkim.key")
    # named relative to the current directory, the file still anchors its own paths
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEWAY_CONFIG", "etc/securecall/gateway.toml")
    assert load().var_dir == etc / "state"
    # a variable is the operator's own, relative to where the command runs
    monkeypatch.setenv("GATEWAY_VAR_DIR", "here")
    assert load().var_dir == Path("here")
