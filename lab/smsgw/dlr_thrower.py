"""HTTP DLR callbacks (``dlr-url`` of ``/send``), in Jasmin's form, retried until the receiver answers 2xx.

Each callback is a row in the store before the first try, so a callback pending when the gateway stops is
tried again after the next start. A try is ``GET url?form`` or ``POST url`` with the form
(``application/x-www-form-urlencoded``), with a connect/read timeout of ``http_timeout``; anything but 2xx is
tried again after ``dlr_retry_delay`` (doubling) up to ``dlr_retries`` times, then given up and logged. The
callbacks of one message go in order (level 1 before level 2, a retried one holding back the next); the
calls run on a small thread pool (urllib), so a slow receiver never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from lab.smsgw.config import Settings
from lab.smsgw.store import Callback, Store

log = logging.getLogger("lab.smsgw.dlr")

WORKERS = 8
USER_AGENT = "telco-robot lab SMS gateway (Jasmin stand-in)"


class DlrThrower:
    def __init__(self, store: Store, settings: Settings, changed: Callable[[], None]) -> None:
        self.store = store
        self.settings = settings
        self._changed = changed
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="smsgw-dlr")
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last: dict[str, asyncio.Task[Any]] = {}  # the latest callback task of each message
        self.delivered = 0
        self.failed = 0
        self._closed = False

    def load(self) -> int:
        """Schedule the callbacks left pending by the previous run; return how many."""
        pending = self.store.pending_callbacks()
        for callback in pending:
            self.schedule(callback)
        return len(pending)

    def add(self, msg_id: str, level: int, url: str, method: str, form: dict[str, str]) -> Callback:
        """Store a callback; `schedule` it once the store has committed."""
        return self.store.add_callback(msg_id, level, url, method, form)

    def schedule(self, callback: Callback) -> None:
        """Send it in the background, after the earlier callbacks of the same message (level 1 before 2)."""
        if self._closed:  # stopping: the row stays pending and is tried after the next start
            return
        previous = self._last.get(callback.msg_id)
        task = asyncio.create_task(self._deliver(callback, previous))
        self._tasks.add(task)
        self._last[callback.msg_id] = task
        task.add_done_callback(lambda done: self._finished(callback.msg_id, done))

    def _finished(self, msg_id: str, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if self._last.get(msg_id) is task:
            del self._last[msg_id]

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _deliver(self, callback: Callback, previous: asyncio.Task[Any] | None) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        loop = asyncio.get_running_loop()
        where = _safe_url(callback.url)
        while True:
            status, detail = await loop.run_in_executor(
                self._executor, call, callback.url, callback.method, callback.form, self.settings.http_timeout
            )
            callback.attempts += 1
            if status is not None and 200 <= status < 300:
                self.delivered += 1
                self.store.update_callback(callback, "done")
                self._changed()
                log.debug("DLR level %d for %s to %s: %d", callback.level, callback.msg_id, where, status)
                return
            outcome = f"HTTP {status}" if status is not None else detail
            if callback.attempts > self.settings.dlr_retries:
                self.failed += 1
                self.store.update_callback(callback, "failed")
                self._changed()
                log.warning(
                    "DLR level %d for %s to %s given up after %d tries (%s)",
                    callback.level,
                    callback.msg_id,
                    where,
                    callback.attempts,
                    outcome,
                )
                return
            pause = self.settings.dlr_retry_delay * 2 ** (callback.attempts - 1)
            log.info(
                "DLR level %d for %s to %s: %s; try %d of %d in %g s",
                callback.level,
                callback.msg_id,
                where,
                outcome,
                callback.attempts + 1,
                self.settings.dlr_retries + 1,
                pause,
            )
            self.store.update_callback(callback, "pending")
            self._changed()
            await asyncio.sleep(pause)


def call(url: str, method: str, form: dict[str, str], timeout: float) -> tuple[int | None, str]:
    """One HTTP request (on a worker thread): (status or None, what went wrong)."""
    data = urllib.parse.urlencode(form)
    headers = {"User-Agent": USER_AGENT, "Accept": "text/plain"}
    if method.upper() == "GET":
        request = urllib.request.Request(f"{url}{'&' if '?' in url else '?'}{data}", headers=headers, method="GET")
    else:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(url, data=data.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(4096)
            return int(response.status), ""
    except urllib.error.HTTPError as error:
        return int(error.code), ""
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return None, str(reason) or type(error).__name__


def _safe_url(url: str) -> str:
    """The callback URL without its query (which may carry a token) for the log."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
