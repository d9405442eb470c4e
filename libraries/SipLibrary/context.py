"""The state SipLibrary's components share: the endpoint host, the phones by alias, the default timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from robot.api import logger

from SipLibrary.errors import SipError
from SipLibrary.host import HostSettings, PjHost
from SipLibrary.phone import CallState, PhoneCall, SipPhone

T = TypeVar("T")
MAX_LISTED = 8


class SipContext:
    """Shared by every keyword component. Only the keyword thread touches it."""

    def __init__(self, *, settings: HostSettings, timeout: timedelta) -> None:
        self.settings = settings
        self.timeout = timeout
        self._host: PjHost | None = None
        self.phones: dict[str, SipPhone] = {}

    # --- the endpoint ------------------------------------------------------------------------------------------

    @property
    def host(self) -> PjHost:
        """The process's pjsua2 endpoint, started on first use (one per process, shared by library instances)."""
        if self._host is None:
            self._host = PjHost.acquire(self.settings)
            if self._host.settings != self.settings:
                logger.info(
                    "SipLibrary: another instance started the pjsua2 endpoint of this process; its settings "
                    f"({self._host.settings}) apply, not ({self.settings})."
                )
        if not self._host.started:
            self._host.start()
            logger.info(
                f"pjsua2 endpoint started in {self._host.started_ms:.1f} ms (poll mode, null audio, "
                f"codecs {', '.join(self._host.default_codecs)})."
            )
        return self._host

    def seconds(self, timeout: timedelta | None) -> float:
        value = self.timeout if timeout is None else timeout
        return max(0.0, value.total_seconds())

    def wait(self, condition: Callable[[], T], timeout: float) -> T | None:
        """Pump pjsua2 until ``condition()`` is truthy or ``timeout`` seconds pass; logs what happened meanwhile."""
        try:
            return self.host.wait(condition, timeout)
        finally:
            self.flush()

    def pump(self) -> None:
        self.host.pump(0)
        self.flush()

    def flush(self) -> None:
        """Log what callbacks recorded (DEBUG), callback failures (WARN) and the SIP trace (DEBUG)."""
        host = self._host
        if host is None:
            return
        notes = host.take_notes()
        if notes:
            logger.debug("SIP events:\n" + "\n".join(notes))
        for error in host.take_errors():
            logger.warn(f"SipLibrary callback failed (the call goes on): {error}")
        trace = host.take_log()
        if trace:
            logger.debug(f"pjsua log:\n{trace}")

    # --- phones and calls ----------------------------------------------------------------------------------------

    def phone(self, alias: str) -> SipPhone:
        phone = self.phones.get(normalise(alias))
        if phone is None:
            known = ", ".join(sorted(p.alias for p in self.phones.values())) or "none"
            raise ValueError(
                f"No SIP phone with alias '{alias}'. Known phones: {known}. Create it with `Create SIP Phone`."
            )
        return phone

    def call(self, alias: str, handle: str | None = None, *, active: bool = True) -> PhoneCall:
        """The call ``handle`` of the phone, or its latest call (the latest one still up when ``active``)."""
        phone = self.phone(alias)
        if handle is not None:
            for call in phone.calls:
                if call.handle == handle.strip():
                    return call
            other = next((p.alias for p in self.phones.values() for c in p.calls if c.handle == handle.strip()), None)
            hint = f" It belongs to phone '{other}'." if other else ""
            known = ", ".join(c.handle for c in phone.calls[-MAX_LISTED:]) or "none"
            raise ValueError(f"Phone '{phone.alias}' has no call '{handle}'.{hint} Its calls: {known}.")
        candidates = phone.active_calls() if active else phone.calls
        if candidates:
            return candidates[-1]
        if phone.calls:
            last = phone.calls[-1]
            raise SipError(f"Phone '{phone.alias}' has no call in progress; its last call was {last.describe()}.")
        raise SipError(f"Phone '{phone.alias}' has had no call yet.")

    def call_soon(self, alias: str, handle: str | None, seconds: float) -> PhoneCall:
        """Like `call` (any state), but waits up to ``seconds`` for a phone without calls to get one."""
        phone = self.phone(alias)
        if handle is None and not phone.calls:
            self.wait(lambda: phone.calls, seconds)
        return self.call(alias, handle, active=False)

    def await_state(self, call: PhoneCall, states: set[CallState], timeout: float) -> bool:
        return self.wait(lambda: call.state in states, timeout) is not None

    def close_all(self, timeout: float) -> None:
        for key, phone in list(self.phones.items()):
            problems = phone.close(timeout)
            del self.phones[key]
            if problems:
                logger.info(f"Closed SIP phone '{phone.alias}' with problems: {'; '.join(problems)}.")
            else:
                logger.info(f"Closed SIP phone '{phone.alias}'.")
        self.flush()

    def shutdown(self) -> None:
        """Close every phone and release the endpoint (the last user destroys it). Never raises."""
        try:
            if self._host is not None and self._host.started:
                self.close_all(timeout=2.0)
        except Exception as error:  # teardown must go on
            logger.debug(f"Closing SIP phones at library close: {error}")
        self.phones.clear()
        host, self._host = self._host, None
        if host is not None:
            started = time.perf_counter()
            host.release()
            logger.debug(f"pjsua2 endpoint released in {(time.perf_counter() - started) * 1000:.1f} ms.")


def normalise(alias: str) -> str:
    return alias.strip().lower()


def describe_calls(calls: list[PhoneCall]) -> str:
    return ", ".join(call.describe() for call in calls[-MAX_LISTED:]) or "none"
