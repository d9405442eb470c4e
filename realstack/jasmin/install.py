"""`install`: Jasmin 0.11.0 in its own venv, and the AMQP spec that its wheel lacks.

0.11.0, not 0.11.1: in 0.11.1 every submit_sm_resp handler fails with ``'SubmitSM' object has no attribute
'response'`` and no delivery receipt is ever delivered (upstream issue #1236). Idempotent: a stamp file in the
venv records a finished install, and a second run does nothing.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from realstack.jasmin.errors import RealStackError
from realstack.jasmin.settings import JASMIN_VERSION, Paths

CONSTRAINTS = Path(__file__).with_name("constraints.txt")
SPEC_IN_SDIST = f"jasmin-{JASMIN_VERSION}/misc/config/resource/amqp0-9-1.xml"
IMPORT_CHECK = (
    "import jasmin, twisted, txamqp, txredisapi, smpp.pdu, smpp.twisted; "
    "from jasmin.managers.clients import SMPPClientManagerPB; "
    "from jasmin.protocols.cli.factory import JCliFactory; "
    "print(jasmin.get_release(), twisted.__version__)"
)


def installed(paths: Paths) -> bool:
    return paths.install_stamp.exists() and paths.venv_python.exists() and paths.amqp_spec.exists()


def _run(command: Sequence[str], *, what: str, timeout: float, fix: str) -> str:
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise RealStackError(f"{what} did not finish within {timeout:g} s; {fix}") from error
    except OSError as error:
        raise RealStackError(f"{what} could not start ({error}); {fix}") from error
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise RealStackError(f"{what} failed (exit {done.returncode}); {fix}\n{tail}")
    return done.stdout


def install(paths: Paths, *, report: Callable[[str], None], python: str = sys.executable) -> bool:
    """Create the venv, install Jasmin, check it imports, fetch the AMQP spec; False when already done."""
    if installed(paths):
        report(f"jasmin {JASMIN_VERSION}: already installed in {paths.venv} (delete it to reinstall)")
        return False
    started = time.monotonic()
    paths.state.mkdir(parents=True, exist_ok=True)
    if not paths.venv_python.exists():
        _run(
            [python, "-m", "venv", str(paths.venv)],
            what=f"Creating the venv {paths.venv}",
            timeout=120,
            fix="check that Python 3.11 has the venv module (Debian: apt-get install python3-venv).",
        )
    pip = [str(paths.venv_python), "-m", "pip", "--disable-pip-version-check"]
    _run(
        [*pip, "install", "--quiet", "-c", str(CONSTRAINTS), f"jasmin=={JASMIN_VERSION}"],
        what=f"pip install jasmin=={JASMIN_VERSION}",
        timeout=900,
        fix="check that PyPI is reachable (pip config list) and see the pip output below.",
    )
    versions = _run(
        [str(paths.venv_python), "-c", IMPORT_CHECK],
        what=f"Importing jasmin {JASMIN_VERSION} in {paths.venv}",
        timeout=120,
        fix=f"delete {paths.venv} and run install again.",
    ).strip()
    if not versions.startswith(JASMIN_VERSION):
        raise RealStackError(f"{paths.venv} has jasmin {versions}, not {JASMIN_VERSION}: delete it and install again.")
    fetch_spec(paths, pip=pip)
    paths.install_stamp.write_text(f"jasmin twisted: {versions}\n", encoding="utf-8")
    report(
        f"jasmin {versions.split()[0]} (Twisted {versions.split()[-1]}) installed in {paths.venv} "
        f"in {time.monotonic() - started:.0f} s; AMQP spec {paths.amqp_spec}"
    )
    return True


def fetch_spec(paths: Paths, *, pip: Sequence[str]) -> None:
    """Take ``amqp0-9-1.xml`` from the jasmin sdist (the wheel does not ship it)."""
    paths.amqp_spec.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jasmin-sdist-") as folder:
        _run(
            [
                *pip,
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"jasmin=={JASMIN_VERSION}",
                "-d",
                folder,
            ],
            what=f"pip download of the jasmin {JASMIN_VERSION} sdist",
            timeout=300,
            fix="check that PyPI is reachable; the AMQP spec is only in the sdist.",
        )
        archives = sorted(Path(folder).glob("jasmin-*.tar.gz"))
        if not archives:
            raise RealStackError(f"pip download left no jasmin-{JASMIN_VERSION}.tar.gz in {folder}.")
        with tarfile.open(archives[0]) as archive:
            try:
                member = archive.extractfile(SPEC_IN_SDIST)
            except KeyError as error:
                raise RealStackError(f"{archives[0].name} has no {SPEC_IN_SDIST}.") from error
            if member is None:
                raise RealStackError(f"{SPEC_IN_SDIST} in {archives[0].name} is not a file.")
            paths.amqp_spec.write_bytes(member.read())
