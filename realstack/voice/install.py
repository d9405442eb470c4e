"""`install`: the Debian packages of the voice real stack, through apt-get (idempotent).

Already installed packages are left alone and nothing runs. A package apt does not know yet (a fresh machine
whose package lists were never fetched) triggers one ``apt-get update`` and a second try.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence

from realstack.voice.errors import RealStackError

PACKAGES = (
    "kamailio",
    "kamailio-extra-modules",
    "kamailio-utils-modules",
    "kamailio-postgres-modules",
    "rtpengine-daemon",
    "sip-tester",
)
UNKNOWN_PACKAGE = ("Unable to locate package", "has no installation candidate", "Package '")

Runner = Callable[[Sequence[str], float], tuple[int, str]]


def _run(command: Sequence[str], timeout: float) -> tuple[int, str]:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as error:
        raise RealStackError(f"`{' '.join(command)}` did not finish within {timeout:g} s.") from error
    except OSError as error:
        raise RealStackError(f"`{command[0]}` could not run ({error}); this needs Debian or Ubuntu.") from error
    return done.returncode, done.stdout + done.stderr


def missing(packages: Sequence[str] = PACKAGES, *, run: Runner = _run) -> list[str]:
    """The packages of ``packages`` that dpkg does not list as installed."""
    if shutil.which("dpkg-query") is None and run is _run:
        raise RealStackError("dpkg-query is missing: the voice real stack installs with apt (Debian 12 or Ubuntu).")
    _, output = run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\\n", *packages], 30)
    installed = {line.split()[0] for line in output.splitlines() if len(line.split()) > 1 and line.split()[1] == "ii"}
    return [package for package in packages if package not in installed]


def install(*, report: Callable[[str], None], run: Runner = _run, is_root: bool | None = None) -> bool:
    """apt-get install what is missing; False when everything was already there."""
    wanted = missing(run=run)
    if not wanted:
        report(f"packages: already installed ({', '.join(PACKAGES)})")
        return False
    root = os.geteuid() == 0 if is_root is None else is_root
    command = ["apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600", *wanted]
    if not root:
        raise RealStackError(
            f"Installing {', '.join(wanted)} needs root: run `sudo {' '.join(command)}` (or this command as root)."
        )
    started = time.monotonic()
    report(f"packages: installing {', '.join(wanted)} with apt-get")
    code, output = run(command, 1800)
    if code != 0 and any(marker in output for marker in UNKNOWN_PACKAGE):
        report("packages: apt does not know them yet; running apt-get update first")
        update_code, update_output = run(["apt-get", "update", "-o", "DPkg::Lock::Timeout=600"], 600)
        if update_code != 0:
            raise RealStackError(f"`apt-get update` failed (exit {update_code}):\n{_tail(update_output)}")
        code, output = run(command, 1800)
    if code != 0:
        raise RealStackError(f"`{' '.join(command)}` failed (exit {code}):\n{_tail(output)}")
    still = missing(run=run)
    if still:
        raise RealStackError(f"apt-get finished but {', '.join(still)} is still not installed:\n{_tail(output)}")
    report(f"packages: installed {', '.join(wanted)} in {time.monotonic() - started:.0f} s")
    return True


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
