"""The lab's configuration comes from the variables file; errors name the entry and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.config import LabConfigError, load
from lab.supervisor import Lab


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vars.yaml"
    path.write_text(text)
    return path


def test_default_lab_variables_give_loopback_ports() -> None:
    config = load()
    billing = config.program("billing")
    assert config.supervisor_host == "127.0.0.1"
    assert billing.command[-4:] == ["--host", "127.0.0.1", "--port", "18080"]
    assert billing.health.http == "http://127.0.0.1:18080/health"
    assert billing.environment["BILLING_DATABASE_URL"].startswith("sqlite:///")


def test_missing_entry_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "LAB_SUPERVISOR_URL: http://127.0.0.1:19001/RPC2\n")
    with pytest.raises(LabConfigError, match=f"Variables file '{path}' has no 'BILLING_URL'"):
        load(path)


def test_lab_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    path = _write(tmp_path, "LAB_SUPERVISOR_URL: http://10.0.0.5:19001/RPC2\n")
    with pytest.raises(LabConfigError, match="loopback only"):
        load(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(LabConfigError, match="does not exist"):
        load(tmp_path / "nope.yaml")


def test_unknown_program_lists_the_known_ones() -> None:
    with pytest.raises(LabConfigError, match=r"no program 'kamailio'\. Known programs: billing"):
        load().program("kamailio")


def test_supervisor_conf_keeps_the_token_private(tmp_path: Path) -> None:
    config = load()
    lab = Lab(config)
    lab.run_dir = tmp_path
    lab.conf_file = tmp_path / "supervisord.conf"
    lab.pid_file = tmp_path / "supervisord.pid"
    lab._write_conf()
    text = lab.conf_file.read_text()
    assert "[program:billing]" in text
    assert "autorestart=false" in text
    assert "TELCO_LAB_RUN_DIR" in text
    assert oct(lab.conf_file.stat().st_mode & 0o777) == "0o600"
