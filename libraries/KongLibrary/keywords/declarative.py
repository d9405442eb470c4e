"""Keywords for declarative configuration (``kong.yaml``) applied with decK, Kong's own sync tool."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from robot.api import logger
from robotlibcore import keyword

from KongLibrary.context import ADMIN_TOKEN_HEADER, KongContext
from KongLibrary.errors import KongDeckError, KongToolMissingError
from KongLibrary.keywords.base import KongComponent, Tags, check_tags

GATEWAY_SUBCOMMAND_SINCE = (1, 28)  # ``deck gateway sync`` replaced ``deck sync`` in decK 1.28
VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
SUMMARY = re.compile(r"^\s*(Created|Updated|Deleted):\s*(\d+)\s*$", re.MULTILINE)
OUTPUT_LINES = 20

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class DeclarativeKeywords(KongComponent):
    """decK is found on ``PATH`` as ``deck``; ``runner`` is the seam tests replace."""

    def __init__(self, ctx: KongContext, *, deck: str = "deck", runner: Runner = subprocess.run) -> None:
        super().__init__(ctx)
        self.deck = deck
        self.runner = runner
        self._version: tuple[int, int, int] | None = None

    @keyword
    def apply_declarative_config(
        self, path: Path, *, select_tags: Tags = None, timeout: timedelta = timedelta(seconds=60)
    ) -> dict[str, int]:
        """Makes Kong's configuration match the declarative file ``path`` (``kong.yaml``) with decK.

        Runs ``deck gateway sync`` (decK 1.28 and later) or ``deck sync -s`` (older) against the
        Admin API, with the admin token as a ``--headers`` value (masked in the log). Entities in Kong that
        are not in the file are *deleted*: use ``select_tags`` so that only entities with those tags are
        managed, e.g. the test's own namespace tag. decK is killed after ``timeout``.

        Returns decK's summary: ``created``, ``updated`` and ``deleted`` counts. Fails with decK's own
        output when it fails, and names the missing tool when ``deck`` is not on ``PATH``.

        | ${summary}= | `Apply Declarative Config` | ${CURDIR}/kong.yaml | select_tags=${NS} |
        | Should Be Equal As Integers | ${summary}[created] | 3 |
        """
        counts = summary_of(self._run("sync", path, select_tags, timeout, ok=(0,))[1])
        return {kind: counts.get(kind, 0) for kind in ("created", "updated", "deleted")}

    @keyword
    def declarative_config_should_be_applied(
        self, path: Path, *, select_tags: Tags = None, timeout: timedelta = timedelta(seconds=60)
    ) -> None:
        """Checks with ``deck diff`` that Kong holds exactly what file ``path`` declares; fails listing decK's diff.

        | `Declarative Config Should Be Applied` | ${CURDIR}/kong.yaml |
        """
        code, output = self._run("diff", path, select_tags, timeout, ok=(0, 2))
        if code == 2:
            raise AssertionError(
                f"Kong's configuration should have matched '{path}' but decK found differences:\n" + _tail(output)
            )

    @keyword
    def get_deck_version(self) -> str:
        """Returns the installed decK version, e.g. ``1.4.0``; fails naming the missing tool without it."""
        return ".".join(str(part) for part in self._deck_version())

    # --- running decK ------------------------------------------------------------------------------
    def _run(
        self, action: str, path: Path, select_tags: Tags, timeout: timedelta, ok: tuple[int, ...]
    ) -> tuple[int, str]:
        state = Path(path)
        if not state.is_file():
            raise ValueError(
                f"Declarative config file '{state}' does not exist. Give a path such as ${{CURDIR}}/kong.yaml."
            )
        command = self.command(action, state, select_tags)
        shown = self.ctx.redact(" ".join(command))
        logger.info(f"Running decK {self.get_deck_version()}: {shown}")
        started = time.perf_counter()
        try:
            completed = self.runner(
                command, capture_output=True, text=True, timeout=timeout.total_seconds(), check=False
            )
        except subprocess.TimeoutExpired:
            raise KongDeckError(
                f"decK did not finish within {timeout.total_seconds():g} s and was killed: {shown}. Is the Admin API "
                f"at {self.ctx.admin_url} answering, or does the file need a longer timeout?"
            ) from None
        seconds = time.perf_counter() - started
        output = self.ctx.redact(f"{completed.stdout or ''}{completed.stderr or ''}".strip())
        logger.info(f"decK {action} exited with {completed.returncode} in {seconds:.1f} s:\n{output[:4000]}")
        if completed.returncode not in ok:
            raise KongDeckError(
                f"decK {action} of '{state}' failed with exit code {completed.returncode}:\n{_tail(output)}"
            )
        return completed.returncode, output

    def command(self, action: str, state: Path, select_tags: Tags) -> list[str]:
        """The decK command line for ``action`` (``sync`` or ``diff``) in the installed version's syntax."""
        executable = self._executable()
        if self._deck_version()[:2] >= GATEWAY_SUBCOMMAND_SINCE:
            command = [executable, "gateway", action, str(state)]
        else:
            command = [executable, action, "-s", str(state)]
        command += ["--kong-addr", self.ctx.admin_url, "--no-color"]
        if self.ctx.admin_token:
            command += ["--headers", f"{ADMIN_TOKEN_HEADER}:{self.ctx.admin_token}"]
        for tag in check_tags(select_tags) or []:
            command += ["--select-tag", tag]
        if action == "diff":
            command.append("--non-zero-exit-code")
        return command

    def _executable(self) -> str:
        found = shutil.which(self.deck)
        if not found:
            raise KongToolMissingError(
                f"{self.ctx.current_keyword} needs decK ('{self.deck}'), which is not on PATH. Install it (Debian "
                "package 'deck', or a release of Kong's decK) or configure Kong with the entity keywords instead."
            )
        return found

    def _deck_version(self) -> tuple[int, int, int]:
        if self._version is None:
            completed = self.runner(
                [self._executable(), "version"], capture_output=True, text=True, timeout=30, check=False
            )
            match = VERSION.search(f"{completed.stdout}{completed.stderr}")
            if completed.returncode != 0 or not match:
                raise KongDeckError(
                    f"Cannot tell the decK version: 'deck version' answered {completed.stdout!r}{completed.stderr!r}."
                )
            self._version = (int(match[1]), int(match[2]), int(match[3] or 0))
        return self._version


def _tail(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()] or ["(no output)"]
    cut = lines[-OUTPUT_LINES:]
    prefix = [f"... ({len(lines) - OUTPUT_LINES} earlier lines in the log)"] if len(lines) > OUTPUT_LINES else []
    return "\n".join(f"  {line}" for line in prefix + cut)


def summary_of(output: str) -> dict[str, int]:
    """decK's ``Summary:`` block as counts (``created``, ``updated``, ``deleted``)."""
    return {kind.lower(): int(count) for kind, count in SUMMARY.findall(output)}
