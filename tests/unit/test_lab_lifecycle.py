"""The lab really runs processes: up is healthy, kill kills, restart restarts, down leaves nothing behind.

Runs on ports of its own (from a temporary variables file) so that it never touches a lab already up.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.config import load
from lab.supervisor import RUN_MARKER, Lab, LabError, _marked_processes


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    billing, supervisor = _free_port(), _free_port()
    variables = tmp_path / "lab.yaml"
    variables.write_text(
        f"BILLING_URL: http://127.0.0.1:{billing}/api/v1\n"
        "BILLING_TOKEN: lifecycle-token\n"
        f"LAB_SUPERVISOR_URL: http://127.0.0.1:{supervisor}/RPC2\n"
        f"LAB_BILLING_DATABASE_URL: sqlite:///{tmp_path}/billing.db\n"
    )
    config = dataclasses.replace(load(variables), run_dir=tmp_path / "run")
    the_lab = Lab(config)
    yield the_lab
    the_lab.down()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def test_up_kill_restart_down(lab: Lab) -> None:
    rows = lab.up()
    assert [(row["name"], row["state"]) for row in rows] == [("billing", "RUNNING")]
    first = rows[0]["pid"]

    assert lab.kill("billing") == first
    assert not _alive(first)
    assert lab.status()[0]["state"] != "RUNNING"  # killed stays dead: no autorestart

    lab.restart("billing")
    second = lab.status()[0]["pid"]
    assert second != first
    assert _alive(second)

    stopped = lab.down()
    assert second in stopped
    assert not _alive(second)
    assert lab.status() == []
    assert list(_marked_processes(RUN_MARKER, str(lab.run_dir))) == []


def test_up_twice_reuses_the_running_lab(lab: Lab) -> None:
    first = lab.up()[0]["pid"]
    assert lab.up()[0]["pid"] == first


def test_down_kills_a_stand_in_that_outlived_supervisord(lab: Lab) -> None:
    lab.up()
    pid = lab.status()[0]["pid"]
    supervisord = lab._supervisord_pid()
    assert supervisord
    os.kill(supervisord, 9)  # a crashed run: the stand-in is orphaned
    lab.down()
    assert not _alive(pid)


def test_up_refuses_a_lab_started_from_another_variables_file(lab: Lab, tmp_path: Path) -> None:
    lab.up()
    other = tmp_path / "other.yaml"
    other.write_text(Path(lab.config.variables_file).read_text())
    stranger = Lab(dataclasses.replace(load(other), run_dir=lab.run_dir))
    with pytest.raises(LabError, match=r"already runs, started from .*Stop it first: python -m lab down"):
        stranger.up()
