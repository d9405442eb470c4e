"""FaultLibrary: stop, kill and start the platform's processes, for failover tests."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, Literal

from robot.api import logger
from robot.api.deco import keyword, library
from telco_common import wait_until

from FaultLibrary.backends import Backend, FaultError, SupervisorBackend

__all__ = ["FaultError", "FaultLibrary"]
__version__ = "0.1.0"


@library(scope="GLOBAL", version=__version__, doc_format="ROBOT", listener="SELF")
class FaultLibrary:
    """FaultLibrary stops, kills and starts the platform's processes, so failover tests break real things.

    A killed process is really killed (SIGKILL, no clean shutdown). The process is named as the back-end
    knows it (``outage-carrier``, ``billing``, ...); the names come from the variables file.

    = Importing =

    | =Argument= | =Meaning= |
    | ``backend`` | How processes are controlled: ``supervisor``, supervisord's XML-RPC (the lab, or any \
    host that runs the platform under supervisord). systemd over SSH and docker are not implemented yet. |
    | ``url`` | The back-end's address, e.g. ``http://127.0.0.1:19001/RPC2`` (``FAULT_URL``). |
    | ``timeout`` | How long a stop, kill or start may take (default 30 s). |
    | ``restore`` | At the end of each test, start again every process it stopped or killed and left \
    down (default true). |

    | Library | FaultLibrary | backend=${FAULT_BACKEND} | url=${FAULT_URL} |

    = Example =

    | ${pid}= | `Kill Platform Process` | outage-carrier |
    | Submit SMS | 254700000001 | 999700000001 | queued while the carrier is down |
    | `Start Platform Process` | outage-carrier |
    """

    def __init__(
        self,
        *,
        backend: Literal["supervisor"] = "supervisor",
        url: str,
        timeout: timedelta = timedelta(seconds=30),
        restore: bool = True,
    ) -> None:
        if backend != "supervisor":
            raise ValueError(f"Fault back-end '{backend}' is not supported; use 'supervisor'.")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url '{url}' is not an HTTP URL; use e.g. http://127.0.0.1:19001/RPC2 (FAULT_URL).")
        self._backend: Backend = SupervisorBackend(url, timeout)
        self._timeout = timeout
        self._restore = restore
        self._downed: list[str] = []

    @keyword
    def kill_platform_process(self, name: str) -> int:
        """Kills the process ``name`` with SIGKILL (no clean shutdown) and returns the PID it had.

        Returns once the process is gone. The process stays down until started again.
        """
        pid = self._backend.kill(name)
        self._remember(name)
        logger.info(f"Killed '{name}' (PID {pid}).")
        return pid

    @keyword
    def stop_platform_process(self, name: str) -> None:
        """Stops the process ``name`` cleanly (SIGTERM, then SIGKILL after the back-end's grace time)."""
        self._backend.stop(name)
        self._remember(name)
        logger.info(f"Stopped '{name}'.")

    @keyword
    def start_platform_process(self, name: str, *, timeout: timedelta | None = None) -> float:
        """Starts the process ``name`` (if it is not running) and waits until it runs; returns the seconds taken."""
        started = time.monotonic()
        self._backend.start(name)
        wait_until(
            lambda: self._backend.info(name).running,
            timeout or self._timeout,
            message=f"Process '{name}' should be running",
        )
        if name in self._downed:
            self._downed.remove(name)
        seconds = time.monotonic() - started
        logger.info(f"'{name}' runs again (PID {self._backend.info(name).pid}) after {seconds:.2f} s.")
        return seconds

    @keyword
    def platform_process_should_be_running(self, name: str) -> int:
        """Fails unless the process ``name`` is running; returns its PID."""
        info = self._backend.info(name)
        if not info.running:
            raise AssertionError(f"Process '{name}' should be running but it is {info.state}.")
        return info.pid

    @keyword
    def get_platform_process_info(self, name: str) -> dict[str, Any]:
        """Returns ``name``, ``state`` (RUNNING, STOPPED, EXITED, ...) and ``pid`` of the process."""
        info = self._backend.info(name)
        return {"name": info.name, "state": info.state, "pid": info.pid}

    def _remember(self, name: str) -> None:
        if name not in self._downed:
            self._downed.append(name)

    # listener: a test that left a process down gets it back, so the next test finds the platform whole
    def _end_test(self, data: Any, result: Any) -> None:
        if not self._restore:
            return
        for name in list(self._downed):
            try:
                self.start_platform_process(name)
            except (FaultError, AssertionError) as error:
                logger.warn(f"Could not restore '{name}' after the test: {error}")
