"""The one pjsua2 ``Endpoint`` of this process, run in poll mode, and the limits of the pjsua2-python wheel.

Threading (the choice this library makes): **poll mode**. pjsua2 gets no worker thread (``threadCnt=0``,
``mainThreadOnly=True``); the keyword thread pumps it with ``libHandleEvents`` in every wait, so every
pjsua2 callback runs on the keyword thread, between two pumps, and nothing else in Python ever touches
pjlib. The media endpoint keeps its own ioqueue thread for RTP (it calls no Python). The price: between
keywords nobody pumps, so SIP is processed when the next SIP keyword runs (the peer's retransmissions
cover a few seconds; registration refreshes happen at the next keyword).

What aborts the whole process (C asserts kept in the wheel) and how this module avoids it:

* a second ``Endpoint`` -> one `PjHost` per process, shared by every library instance;
* a pjsua2 object (call, player, recorder, buddy, account) alive after ``libDestroy`` -> every object is
  tracked and its C++ side destroyed before ``libDestroy``; a call's C++ side goes already when it ends;
* a pjlib call from an unregistered thread -> the keyword thread is checked, strangers are registered first;
* more than 64 media sockets open or closing (each call leg has 2, a closed one is held 500 ms) -> new
  call legs are paced (`PjHost.pace`).

Measured limits of pjsua2-python 2.15.1.post1: **4 call legs** per process (``PJSUA_MAX_CALLS`` is
compiled as 4; ``maxCalls`` above it is ignored), **8 SIP transports** and so 8 phones, 32 players.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

try:
    import pjsua2 as pj

    pj.Endpoint  # noqa: B018 - the wheel loads its binary on first use: fail here, clearly
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError(f"SipLibrary needs pjsua2-python: pip install pjsua2-python==2.15.1.post1 ({error}).") from error

from SipLibrary.errors import SipCapacityError, SipError

T = TypeVar("T")

MAX_CALL_LEGS = 4  # PJSUA_MAX_CALLS of the wheel: call legs (both ends of a call between two local phones)
MAX_PHONES = 8  # PJSUA_MAX_TRANSPORTS (and PJSUA_MAX_ACC): one transport per phone
MEDIA_KEYS = 64  # PJ_IOQUEUE_MAX_HANDLES of the media endpoint's select ioqueue
KEYS_PER_LEG = 2  # an RTP and an RTCP socket
KEY_HOLD = 0.6  # seconds a closed socket keeps its ioqueue key (PJ_IOQUEUE_KEY_FREE_DELAY 500 ms) plus margin
KEY_RESERVE = 4  # keys kept free for legs pjsua opens by itself (incoming calls, transfers)
PUMP_SLICE_MS = 10
KNOWN_CODECS = ("PCMU", "PCMA", "G722", "speex", "iLBC", "GSM", "L16", "opus", "G729", "AMR", "AMR-WB")


@dataclass(frozen=True)
class HostSettings:
    """How the endpoint is configured; fixed when it starts."""

    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    bind_address: str = "127.0.0.1"
    sip_trace: bool = False
    log_file: str | None = None
    user_agent: str = "telco-robot SipLibrary"


class _Endpoint(pj.Endpoint):
    """The endpoint, to hear of incoming calls pjsua refused before any account saw them."""

    def __init__(self, host: PjHost) -> None:
        super().__init__()
        self._host = host

    def onRejectedIncomingCall(self, prm: Any) -> None:  # noqa: N802 - pjsua2 callback name
        try:
            self._host.note(
                f"pjsua refused an incoming call ({prm.statusCode} {prm.reason}): {prm.remoteInfo} -> {prm.localInfo}"
            )
            self._host.rejected.append((prm.statusCode, prm.reason, prm.remoteInfo, time.monotonic()))
        except Exception as error:  # must never reach pjsua
            self._host.callback_failed("Endpoint.onRejectedIncomingCall", error)


class PjHost:
    """The process-wide pjsua2 endpoint: started on first use, shared by library instances, destroyed once."""

    _current: ClassVar[PjHost | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, settings: HostSettings) -> None:
        self.settings = settings
        self.users = 0
        self.ep: Any = None
        self.owner: int | None = None
        self.codec_ids: list[str] = []
        self.default_codecs: list[str] = []
        self.legs = 0
        self.key_releases: deque[float] = deque()
        self.objects: list[Any] = []  # pjsua2 objects whose C++ side must go before libDestroy
        self.deferred: list[Callable[[], None]] = []
        self.notes: deque[str] = deque(maxlen=500)
        self.errors: deque[str] = deque(maxlen=100)
        self.rejected: deque[tuple[int, str, str, float]] = deque(maxlen=50)
        self.transports: set[int] = set()
        self.parked: list[tuple[Any, list[Any], Callable[[], bool]]] = []
        self.started_ms = 0.0
        self._log_path: Path | None = None
        self._log_offset = 0
        self._own_log = False

    # --- life cycle -----------------------------------------------------------------------------------------

    @classmethod
    def acquire(cls, settings: HostSettings) -> PjHost:
        """The host of this process (created, not started, on the first call); counts the user."""
        with cls._lock:
            if cls._current is None:
                cls._current = PjHost(settings)
            host = cls._current
            host.users += 1
            return host

    def release(self) -> None:
        """One user less; the last one destroys the endpoint."""
        with PjHost._lock:
            self.users -= 1
            last = self.users <= 0
            if last and PjHost._current is self:
                PjHost._current = None
        if last:
            self.shutdown()

    @property
    def started(self) -> bool:
        return self.ep is not None

    def start(self) -> None:
        if self.ep is not None:
            return
        started = time.perf_counter()
        ep = _Endpoint(self)
        with _quiet_stdout():
            ep.libCreate()
        try:
            config = pj.EpConfig()
            config.uaConfig.threadCnt = 0
            config.uaConfig.mainThreadOnly = True
            config.uaConfig.maxCalls = MAX_CALL_LEGS
            config.uaConfig.userAgent = self.settings.user_agent
            config.logConfig.consoleLevel = 0
            config.logConfig.level = 0
            self._setup_log(config.logConfig)
            config.medConfig.noVad = True
            with _quiet_stdout():
                ep.libInit(config)
                ep.audDevManager().setNullDev()
                ep.libStart()
            self.codec_ids = [info.codecId for info in ep.codecEnum2()]
        except Exception:
            ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
            raise
        self.ep = ep
        self.owner = threading.get_ident()
        self.default_codecs = self.resolve_codecs(self.settings.codecs)
        self.apply_codecs(self.default_codecs)
        self.started_ms = (time.perf_counter() - started) * 1000
        atexit.register(_shutdown_at_exit)

    def _setup_log(self, log_config: Any) -> None:
        path = self.settings.log_file
        if self.settings.sip_trace and not path:
            handle, name = tempfile.mkstemp(prefix="siplibrary-", suffix=".log")
            os.close(handle)
            path, self._own_log = name, True
        if not path:
            return
        log_config.filename = path
        log_config.level = 5 if self.settings.log_file else 4
        log_config.msgLogging = 1 if self.settings.sip_trace else 0
        log_config.decor = pj.PJ_LOG_HAS_TIME | pj.PJ_LOG_HAS_MICRO_SEC | pj.PJ_LOG_HAS_SENDER | pj.PJ_LOG_HAS_NEWLINE
        self._log_path = Path(path)
        self._log_offset = 0

    def shutdown(self) -> None:
        """Destroy every tracked pjsua2 object, then the endpoint. Never raises; safe to call twice."""
        ep, self.ep = self.ep, None
        if ep is None:
            return
        with contextlib.suppress(Exception):
            if not ep.libIsThreadRegistered():
                ep.libRegisterThread(f"siplibrary-close-{threading.get_ident()}")
        with contextlib.suppress(Exception):
            ep.hangupAllCalls()
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline and self.legs > 0:
                ep.libHandleEvents(PUMP_SLICE_MS)
        self.run_deferred()
        # Accounts still waiting for a MESSAGE answer stay valid through libDestroy (which answers them 503)
        # and go after it: destroyed before, the late answer would abort the process.
        late = {id(obj) for account, buddies, _ in self.parked for obj in (account, *buddies)}
        for obj in reversed(self.objects):
            if id(obj) not in late:
                destroy(obj)
        with contextlib.suppress(Exception):
            ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
        for obj in reversed(self.objects):
            destroy(obj)
        self.objects.clear()
        self.parked.clear()
        self.legs = 0
        self.transports.clear()
        if self._own_log and self._log_path is not None:
            with contextlib.suppress(OSError):
                self._log_path.unlink()
        self._log_path = None

    # --- the keyword thread ---------------------------------------------------------------------------------

    def endpoint(self) -> Any:
        """The started endpoint, for the keyword thread only."""
        self.start()
        if threading.get_ident() != self.owner:
            if not self.ep.libIsThreadRegistered():
                self.ep.libRegisterThread(f"siplibrary-{threading.get_ident()}")
            raise SipError(
                "SipLibrary runs pjsua2 in poll mode: call its keywords from the thread that first used it "
                f"(thread {self.owner}), not from thread {threading.get_ident()}."
            )
        return self.ep

    def pump(self, milliseconds: int = 0) -> None:
        """Let pjsua2 process what arrived (callbacks run here), then run work the callbacks deferred."""
        self.endpoint().libHandleEvents(milliseconds)
        self.run_deferred()

    def wait(self, condition: Callable[[], T], timeout: float) -> T | None:
        """Pump until ``condition()`` is truthy (returned) or ``timeout`` seconds pass (``None``)."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            self.pump(0)
            value = condition()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.pump(max(1, min(PUMP_SLICE_MS, int(left * 1000))))

    def park(self, account: Any, buddies: list[Any], done: Callable[[], bool]) -> None:
        """Keep a closed phone's account (and buddies) until ``done()``: pjsua2 still needs it then."""
        self.parked.append((account, buddies, done))

    def reap_parked(self, *, force: bool = False) -> None:
        for entry in list(self.parked):
            account, buddies, done = entry
            if force or done():
                self.parked.remove(entry)
                for buddy in buddies:
                    self.forget(buddy)
                with contextlib.suppress(Exception):
                    account.shutdown()
                self.forget(account)

    def run_deferred(self) -> None:
        if self.parked:
            self.reap_parked()
        while self.deferred:
            job = self.deferred.pop(0)
            try:
                job()
            except Exception as error:
                self.callback_failed("deferred clean-up", error)

    # --- capacity ---------------------------------------------------------------------------------------------

    def leg_opened(self) -> None:
        self.legs += 1

    def leg_closed(self) -> None:
        self.legs = max(0, self.legs - 1)
        self.key_releases.append(time.monotonic())

    def media_keys_in_use(self) -> int:
        now = time.monotonic()
        while self.key_releases and now - self.key_releases[0] > KEY_HOLD:
            self.key_releases.popleft()
        return KEYS_PER_LEG * (self.legs + len(self.key_releases))

    def media_keys_free_for(self, legs: int) -> bool:
        return self.media_keys_in_use() + KEYS_PER_LEG * legs <= MEDIA_KEYS - KEY_RESERVE

    def check_legs(self, needed: int, what: str) -> None:
        """Fail before sending when ``needed`` more call legs would pass the wheel's limit."""
        if self.legs + needed > MAX_CALL_LEGS:
            raise SipCapacityError(
                f"{what} needs {needed} more call leg(s), but this process already holds {self.legs} and "
                f"pjsua2-python allows {MAX_CALL_LEGS} (a call between two phones of this library takes 2). "
                "Hang up a call first, or put the far end in another process (another Robot/pabot process, a "
                "platform user); nothing was sent."
            )

    def pace(self, legs: int, timeout: float) -> float:
        """Wait (pumping) until ``legs`` new legs fit in the media ioqueue; returns the seconds waited."""
        started = time.monotonic()
        if self.wait(lambda: self.media_keys_free_for(legs), min(timeout, 2 * KEY_HOLD)) is None:
            raise SipCapacityError(
                f"The media ioqueue stays full ({self.media_keys_in_use()} of {MEDIA_KEYS} sockets open or closing); "
                "nothing was sent."
            )
        return time.monotonic() - started

    # --- codecs ---------------------------------------------------------------------------------------------

    def resolve_codecs(self, names: tuple[str, ...] | list[str]) -> list[str]:
        """Codec names (``PCMU``, ``G722``, ``speex/8000``) -> pjsua codec ids, in the given order."""
        resolved: list[str] = []
        for name in names:
            wanted = name.strip().lower()
            matches = [cid for cid in self.codec_ids if cid.lower() == wanted or cid.lower().startswith(wanted + "/")]
            if not matches:
                known = ", ".join(sorted({cid.split("/")[0] for cid in self.codec_ids}))
                raise ValueError(f"Codec '{name}' is not available in pjsua2. Choose from: {known}.")
            resolved.extend(cid for cid in matches if cid not in resolved)
        return resolved

    def apply_codecs(self, order: list[str]) -> None:
        """Enable exactly ``order`` (first = most preferred); the endpoint-wide priorities pjsua offers from."""
        ep = self.endpoint()
        top = 255
        for cid in self.codec_ids:
            ep.codecSetPriority(cid, top - order.index(cid) if cid in order else 0)

    # --- objects, notes, logs ----------------------------------------------------------------------------------

    def track(self, obj: T) -> T:
        self.objects.append(obj)
        return obj

    def forget(self, obj: Any) -> None:
        """Destroy the C++ side of ``obj`` now and stop tracking it."""
        destroy(obj)
        with contextlib.suppress(ValueError):
            self.objects.remove(obj)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def callback_failed(self, where: str, error: BaseException) -> None:
        self.errors.append(f"{where}: {type(error).__name__}: {error}")

    def take_notes(self) -> list[str]:
        taken = list(self.notes)
        self.notes.clear()
        return taken

    def take_errors(self) -> list[str]:
        taken = list(self.errors)
        self.errors.clear()
        return taken

    def take_log(self, limit: int = 20000) -> str:
        """What pjsua wrote to its log file since the last call (the SIP trace), at most ``limit`` characters."""
        if self._log_path is None:
            return ""
        try:
            with self._log_path.open("rb") as stream:
                stream.seek(self._log_offset)
                data = stream.read()
        except OSError:
            return ""
        self._log_offset += len(data)
        text = data.decode("utf-8", "replace")
        return text if len(text) <= limit else f"{text[:limit]}\n... ({len(text) - limit} more characters)"


def destroy(obj: Any) -> None:
    """Delete the C++ object behind a pjsua2 proxy now (its Python side stays, unusable). Never raises."""
    with contextlib.suppress(Exception):
        if obj is not None and getattr(obj, "thisown", False):
            type(obj).__swig_destroy__(obj)


def current_host() -> PjHost | None:
    return PjHost._current


def _shutdown_at_exit() -> None:
    host = PjHost._current
    if host is not None:
        host.shutdown()


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """pjlib prints its banner to stdout before any log setting applies; send it to /dev/null."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
