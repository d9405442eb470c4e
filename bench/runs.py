"""Wall time of the whole suite set: serial ``robot`` against pabot, in one run, as a ratio."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def suite_wall_time(variables_file: str, processes: int) -> dict[str, float]:
    """Run every suite once with ``robot`` and once with pabot against the running lab; return both times."""
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    common = [
        "--pythonpath",
        "libraries",
        "--variablefile",
        variables_file,
        "--console",
        "none",
        "--log",
        "NONE",
        "--report",
        "NONE",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        serial = _timed(
            [sys.executable, "-m", "robot", *common, "--outputdir", f"{scratch}/serial", "suites"], environment
        )
        parallel = _timed(
            [
                sys.executable,
                "-m",
                "pabot.pabot",
                "--processes",
                str(processes),
                "--testlevelsplit",
                "--chunk",
                "--pabotlibport",
                "0",
                *common,
                "--outputdir",
                f"{scratch}/pabot",
                "suites",
            ],
            environment,
        )
    return {
        "serial_s": round(serial, 2),
        "pabot_s": round(parallel, 2),
        "processes": processes,
        "speed_up": round(serial / parallel, 2),
    }


def _timed(command: list[str], environment: dict[str, str]) -> float:
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False, timeout=1800
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{command[2]} run failed ({completed.returncode}):\n{completed.stdout[-2000:]}")
    return elapsed
