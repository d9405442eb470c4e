"""Keywords that start, wait for, steer and stop SIPp instances."""

from __future__ import annotations

import math
import time
from datetime import timedelta
from typing import Any

from robot.api import logger
from robotlibcore import keyword

from SipLoadLibrary.errors import SippError, SippTimeoutError
from SipLoadLibrary.keywords.base import SippComponent, summary
from SipLoadLibrary.process import EXIT_CODES, SippProcess, SippSpec

FATAL = (255, 254)


class RunKeywords(SippComponent):
    @keyword(name="Start SIPp UAS")
    def start_sipp_uas(
        self,
        alias: str | None = None,
        port: int | None = None,
        scenario: str = "uas",
        *,
        rtp_echo: bool = False,
        trace_messages: bool = False,
        options: list[str] | None = None,
    ) -> str:
        """Starts a SIPp UAS in the background and returns its address ``host:port`` for a UAC to call.

        The UAS answers every INVITE (180, then 200 with SDP) and the BYE, for as long as it runs. The
        library's ``uas`` scenario echoes the INVITE's Record-Route, so it works behind a proxy; ``scenario``
        may also be an XML file or a SIPp built-in (``sipp:uas``). ``port`` defaults to a free one.
        ``rtp_echo`` echoes RTP back; ``trace_messages`` writes every SIP message to ``messages.log`` in the
        instance's folder; ``options`` are added to SIPp's command line as they are.

        | ${uas}= | `Start SIPp UAS` | sink |
        | `Run SIPp UAC` | ${uas} | rate=20 | count=60 |
        | [Teardown] | `Stop All SIPp` |
        """
        alias = self.ctx.new_alias("uas", alias)
        sip_port, control, media = self.ctx.ports(port)
        spec = SippSpec(
            alias=alias,
            role="uas",
            scenario=scenario,
            host=self.ctx.host,
            port=sip_port,
            control_port=control,
            media_port=media,
            lifetime_s=int(self.ctx.max_lifetime.total_seconds()),
            trace_messages=trace_messages,
            rtp_echo=rtp_echo,
            options=tuple(options or ()),
        )
        return self.ctx.start(spec).address

    @keyword(name="Start SIPp UAC")
    def start_sipp_uac(
        self,
        target: str,
        service: str = "service",
        *,
        alias: str | None = None,
        rate: float = 10.0,
        count: int | None = None,
        duration: timedelta | None = None,
        hold: timedelta = timedelta(0),
        scenario: str = "uac",
        auth_user: str | None = None,
        auth_password: str | None = None,
        caller: str | None = None,
        max_concurrent: int | None = None,
        port: int | None = None,
        call_timeout: timedelta = timedelta(seconds=30),
        response_times: bool = True,
        trace_messages: bool = False,
        options: list[str] | None = None,
    ) -> str:
        """Starts a SIPp UAC in the background that calls ``service`` at ``target`` (``host:port``); returns its alias.

        It places ``rate`` new calls per second, ``count`` calls in all (or ``rate`` x ``duration``; with
        neither it runs until `Stop SIPp`), each held for ``hold`` before the BYE. Through a proxy give
        ``auth_user`` and ``auth_password``: the library's ``uac`` scenario answers a 407 with digest
        credentials (the 407 is optional, so the same scenario calls a UAS directly). ``caller`` is the From
        user (default: ``auth_user``, else ``sipp``). ``max_concurrent`` caps open calls (SIPp's ``-l``);
        a call that waits longer than ``call_timeout`` for an answer fails. ``response_times`` writes every
        call-setup time (``-trace_rtt``) for percentiles in the result.

        Nothing listening at ``target`` fails at once. Use `Wait For SIPp` for the result, or
        `Run SIPp UAC` to do both. Several UACs (and UASs) run at once, each with its own ports.

        | ${uac}= | `Start SIPp UAC` | 127.0.0.1:5060 | 1020 | rate=100 | duration=30s |
        | ... | auth_user=1001 | auth_password=pw1001 |
        | `Set SIPp Rate` | 200 | alias=${uac} |
        | ${result}= | `Wait For SIPp` | ${uac} | timeout=60s |
        """
        return self._start_uac(
            target,
            service,
            alias=alias,
            rate=rate,
            count=count,
            duration=duration,
            hold=hold,
            scenario=scenario,
            auth_user=auth_user,
            auth_password=auth_password,
            caller=caller,
            max_concurrent=max_concurrent,
            port=port,
            call_timeout=call_timeout,
            response_times=response_times,
            trace_messages=trace_messages,
            options=options,
            bounded=False,
        ).alias

    @keyword(name="Run SIPp UAC")
    def run_sipp_uac(
        self,
        target: str,
        service: str = "service",
        *,
        alias: str | None = None,
        rate: float = 10.0,
        count: int | None = None,
        duration: timedelta | None = None,
        hold: timedelta = timedelta(0),
        scenario: str = "uac",
        auth_user: str | None = None,
        auth_password: str | None = None,
        caller: str | None = None,
        max_concurrent: int | None = None,
        port: int | None = None,
        call_timeout: timedelta = timedelta(seconds=30),
        response_times: bool = True,
        trace_messages: bool = False,
        options: list[str] | None = None,
        timeout: timedelta | None = None,
    ) -> dict[str, Any]:
        """Runs a SIPp UAC to its end and returns the result (see `Get SIPp Result`); bounded by ``timeout``.

        Arguments as `Start SIPp UAC`, but ``count`` or ``duration`` is required. ``timeout`` defaults to
        the planned run time (calls / rate + hold) plus the library's ``timeout``; a UAC still running then
        is killed and the keyword fails with the figures so far. Failed calls do not fail this keyword:
        check them with `SIPp Result Should Be`.

        | ${result}= | `Run SIPp UAC` | ${uas} | rate=20 | duration=3s |
        | `SIPp Result Should Be` | failed | == | 0 |
        | `Should Be True` | ${result}[calls_per_second] >= 19 |
        """
        instance = self._start_uac(
            target,
            service,
            alias=alias,
            rate=rate,
            count=count,
            duration=duration,
            hold=hold,
            scenario=scenario,
            auth_user=auth_user,
            auth_password=auth_password,
            caller=caller,
            max_concurrent=max_concurrent,
            port=port,
            call_timeout=call_timeout,
            response_times=response_times,
            trace_messages=trace_messages,
            options=options,
            bounded=True,
        )
        planned = (instance.spec.count or 0) / rate + hold.total_seconds()
        seconds = timeout.total_seconds() if timeout is not None else planned + self.ctx.seconds(None)
        return self._wait(instance, seconds, kill_on_timeout=True)

    @keyword(name="Wait For SIPp")
    def wait_for_sipp(self, alias: str | None = None, *, timeout: timedelta | None = None) -> dict[str, Any]:
        """Waits until SIPp instance ``alias`` (default: the last started) ends and returns its result.

        It fails after ``timeout`` (default: the library's) naming what the instance did so far; the
        instance keeps running then (stop it with `Stop SIPp`). A UAS runs until stopped: stop it instead.

        | ${result}= | `Wait For SIPp` | uac1 | timeout=2 min |
        """
        return self._wait(self.ctx.get(alias), self.ctx.seconds(timeout), kill_on_timeout=False)

    @keyword(name="Stop SIPp")
    def stop_sipp(self, alias: str | None = None, *, grace: timedelta = timedelta(seconds=5)) -> dict[str, Any]:
        """Stops SIPp instance ``alias`` and returns its result.

        It is asked to quit over its control port (a UAC places no new calls and ends the open ones); if it
        still runs after ``grace`` it is killed by its PID. Stopping an ended instance only returns its result.

        | ${result}= | `Stop SIPp` | sink |
        """
        instance = self.ctx.get(alias)
        if instance.running():
            instance.control("q")
            if not instance.wait(grace.total_seconds()):
                instance.kill()
                logger.info(f"SIPp '{instance.alias}' did not quit within {grace.total_seconds():g} s: killed.")
            else:
                instance.stopped_by = "stopped"
        result = instance.result()
        logger.info(summary(result))
        return result

    @keyword(name="Stop All SIPp")
    def stop_all_sipp(self, *, grace: timedelta = timedelta(0)) -> None:
        """Kills every SIPp instance this library started that still runs, by PID; for test and suite teardowns.

        With ``grace`` each is first asked to quit over its control port and killed only if it is still
        running after that time. It never fails because of what the instances did, and the library also
        runs it when it goes out of scope (at the end of the run).

        | [Teardown] | `Stop All SIPp` |
        """
        for line in self.ctx.stop_all(grace.total_seconds()):
            logger.info(f"SIPp {line}.")

    @keyword(name="Set SIPp Rate")
    def set_sipp_rate(self, rate: float, *, alias: str | None = None) -> None:
        """Changes a running UAC's call rate (calls per second) through its control port.

        | `Set SIPp Rate` | 200 | alias=load |
        """
        if rate <= 0:
            raise ValueError(f"rate must be above 0 calls per second, got {rate}.")
        instance = self.ctx.get(alias)
        if instance.spec.role != "uac":
            raise ValueError(f"SIPp '{instance.alias}' is a UAS; only a UAC has a call rate.")
        if not instance.running():
            raise SippError(f"SIPp '{instance.alias}' is not running any more ({instance.result()['state']}).")
        instance.control(f"cset rate {rate:g}")
        logger.info(f"SIPp '{instance.alias}': rate set to {rate:g} calls/s.")

    # --- helpers ---------------------------------------------------------------------------------------------

    def _start_uac(
        self,
        target: str,
        service: str,
        *,
        alias: str | None,
        rate: float,
        count: int | None,
        duration: timedelta | None,
        hold: timedelta,
        scenario: str,
        auth_user: str | None,
        auth_password: str | None,
        caller: str | None,
        max_concurrent: int | None,
        port: int | None,
        call_timeout: timedelta,
        response_times: bool,
        trace_messages: bool,
        options: list[str] | None,
        bounded: bool,
    ) -> SippProcess:
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"rate must be a number of calls per second above 0, got {rate}.")
        if count is not None and duration is not None:
            raise ValueError("Give count or duration, not both.")
        if count is not None and count < 1:
            raise ValueError(f"count must be at least 1 call, got {count}.")
        if duration is not None:
            if duration.total_seconds() <= 0:
                raise ValueError(f"duration must be positive, got {duration}.")
            count = max(1, math.ceil(rate * duration.total_seconds()))
        if bounded and count is None:
            raise ValueError("Run SIPp UAC needs count= or duration=; use Start SIPp UAC for an open-ended load.")
        if hold.total_seconds() < 0 or call_timeout.total_seconds() <= 0:
            raise ValueError("hold must not be negative and call_timeout must be positive.")
        if max_concurrent is not None and max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}.")
        if (auth_user is None) != (auth_password is None):
            raise ValueError("auth_user and auth_password go together.")
        self.ctx.check_target(target)
        alias = self.ctx.new_alias("uac", alias)
        sip_port, control, media = self.ctx.ports(port)
        spec = SippSpec(
            alias=alias,
            role="uac",
            scenario=scenario,
            host=self.ctx.host,
            port=sip_port,
            control_port=control,
            media_port=media,
            target=target,
            service=service,
            rate=rate,
            count=count,
            hold_ms=round(hold.total_seconds() * 1000),
            max_concurrent=max_concurrent,
            caller=caller or auth_user or "sipp",
            auth_user=auth_user,
            auth_password=auth_password,
            recv_timeout_ms=round(call_timeout.total_seconds() * 1000),
            lifetime_s=int(self.ctx.max_lifetime.total_seconds()),
            response_times=response_times,
            trace_messages=trace_messages,
            options=tuple(options or ()),
        )
        return self.ctx.start(spec)

    def _wait(self, instance: SippProcess, seconds: float, *, kill_on_timeout: bool) -> dict[str, Any]:
        started = time.monotonic()
        if not instance.wait(seconds):
            if kill_on_timeout:
                instance.kill()
            result = instance.result()
            fate = "killed" if kill_on_timeout else "still running; stop it with `Stop SIPp`"
            raise SippTimeoutError(
                f"SIPp '{instance.alias}' did not end within {seconds:g} s ({fate}). So far: "
                f"{result['calls_created']} calls, {result['successful']} successful, {result['failed']} failed."
            )
        result = instance.result()
        code = result["exit_code"]
        logger.info(summary(result))
        if code in FATAL:
            raise SippError(
                f"SIPp '{instance.alias}' stopped with a {EXIT_CODES[code]} (exit {code}) after "
                f"{time.monotonic() - started:.1f} s:\n{instance.error_text()}"
            )
        if result["failed"]:
            logger.info(f"SIPp '{instance.alias}' errors (last lines):\n{instance.error_text()}")
        return result
