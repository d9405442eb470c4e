"""FaultLibrary against a real supervisord (the lab on ports of its own) and against nothing at all."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from FaultLibrary import FaultError, FaultLibrary

from lab.config import load
from lab.supervisor import Lab


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    folder = tmp_path_factory.mktemp("faultlab")
    variables = folder / "lab.yaml"
    variables.write_text(
        f"BILLING_URL: http://127.0.0.1:{_free_port()}/api/v1\nBILLING_TOKEN: fault-token\n"
        f"LAB_SUPERVISOR_URL: http://127.0.0.1:{_free_port()}/RPC2\n"
        f"LAB_BILLING_DATABASE_URL: sqlite:///{folder}/billing.db\n"
    )
    the_lab = Lab(dataclasses.replace(load(variables), run_dir=folder / "run"))
    the_lab.up()
    yield the_lab
    the_lab.down()


def test_kill_then_start_gives_a_new_process(lab: Lab) -> None:
    faults = FaultLibrary(url=lab.config.supervisor_url)
    before = faults.platform_process_should_be_running("billing")
    assert faults.kill_platform_process("billing") == before
    with pytest.raises(AssertionError, match="Process 'billing' should be running but it is"):
        faults.platform_process_should_be_running("billing")
    faults.start_platform_process("billing")
    assert faults.platform_process_should_be_running("billing") != before


def test_a_process_left_down_is_restored_after_the_test(lab: Lab) -> None:
    faults = FaultLibrary(url=lab.config.supervisor_url)
    faults.stop_platform_process("billing")
    faults._end_test(None, None)
    faults.platform_process_should_be_running("billing")


def test_unknown_process_is_named(lab: Lab) -> None:
    faults = FaultLibrary(url=lab.config.supervisor_url)
    with pytest.raises(FaultError, match=r"has no process 'nope'\. Check the process name in the variables file"):
        faults.kill_platform_process("nope")


def test_unreachable_supervisor_is_named_with_the_fix() -> None:
    url = f"http://127.0.0.1:{_free_port()}/RPC2"
    faults = FaultLibrary(url=url, timeout=timedelta(seconds=2))
    with pytest.raises(FaultError, match=f"supervisord at {url} does not answer .*Is the lab up"):
        faults.get_platform_process_info("billing")


def test_bad_import_arguments() -> None:
    with pytest.raises(ValueError, match="is not an HTTP URL"):
        FaultLibrary(url="127.0.0.1:19001")
    with pytest.raises(ValueError, match="not supported"):
        FaultLibrary(backend="docker", url="http://127.0.0.1:1/RPC2")  # type: ignore[arg-type]


def test_unknown_lab_program_is_named(tmp_path: Path) -> None:
    variables = tmp_path / "v.yaml"
    variables.write_text("LAB_SUPERVISOR_URL: http://127.0.0.1:19001/RPC2\nLAB_PROGRAMS: [billing, kamailio]\n")
    with pytest.raises(ValueError, match=r"unknown programs \['kamailio'\]"):
        load(variables)
