"""The application server: the SIP engine on the main thread, the SMPP link, the HTTP status API, MO keywords.

MO keywords (to the short code, from a subscriber's MSISDN; case and spacing do not matter):

| CALL ME     | the callback application rings the subscriber                                      |
| FWD <user>  | calls to the subscriber go to <user> (``htable.sets fwd <A> <user>`` on the proxy)   |
| FWD OFF     | forwarding cleared (``htable.delete fwd <A>``)                                      |

Anything else from a subscriber is answered with a short help text; MO from strangers is only logged.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lab.voiceapps import rpc
from lab.voiceapps.config import USER, AppConfig
from lab.voiceapps.engine import Engine
from lab.voiceapps.events import EventLog
from lab.voiceapps.httpd import StatusServer
from lab.voiceapps.services import Context, Services, generate_prompts
from lab.voiceapps.sms import MoMessage, SmsLink

log = logging.getLogger("lab.voiceapps")

HELP = "Send CALL ME to be called back, FWD <number> to forward your calls, FWD OFF to stop forwarding."
_FWD = re.compile(r"^FWD\s+(?P<target>\S+)$")


class App:
    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.events = EventLog()
        self.engine = Engine(config, self.events)
        settings = config.settings
        self.sms = SmsLink(
            config.smpp,
            events=self.events,
            on_mo=self.on_mo,
            reconnect_max=settings.smpp_reconnect_max,
            response_timeout=settings.smpp_response_timeout,
            enquire_link_interval=settings.smpp_enquire_link_interval,
        )
        self.worker = ThreadPoolExecutor(max_workers=2, thread_name_prefix="voiceapps-worker")
        self.media_dir = Path(tempfile.mkdtemp(prefix="voiceapps-prompts-"))
        self.ctx = Context(config, self.engine, self.events, self.sms, self.worker, generate_prompts(self.media_dir))
        self.services = Services(self.ctx)
        self.engine.on_incoming = self.services.incoming
        self.http = StatusServer(self, host=config.sip.host, port=config.http_port)
        self.started = time.monotonic()

    # --- life cycle (main thread) --------------------------------------------------------------------------

    def start(self) -> None:
        """Start SIP first (it owns the main thread), then SMPP and HTTP; raises when a port is taken."""
        self.config.recordings.mkdir(parents=True, exist_ok=True)
        self.engine.start()
        self.sms.start()
        self.http.start()
        log.info(
            "voice applications up: SIP %s, SMPP %s:%d as %s (short code %s), HTTP %s:%d, recordings %s",
            self.engine.transport_address,
            self.config.smpp.host,
            self.config.smpp.port,
            self.config.smpp.system_id,
            self.config.smpp.short_code,
            self.config.sip.host,
            self.http.port,
            self.config.recordings,
        )

    def serve(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.engine.run_once(10)

    def close(self) -> None:
        """Hang up, let the last SMS go, and stop everything (pjsua2 objects before ``libDestroy``)."""
        self.engine.shutdown()
        self.worker.shutdown(wait=True, cancel_futures=False)
        self.sms.flush(2.0)
        self.sms.stop()
        self.http.stop()
        shutil.rmtree(self.media_dir, ignore_errors=True)
        log.info("voice applications stopped")

    # --- MO keywords (SMPP thread) -----------------------------------------------------------------------

    def on_mo(self, message: MoMessage) -> None:
        destination = message.destination.lstrip("+")
        if not destination.startswith(self.config.smpp.short_code):
            self.events.add("mo_ignored", source=message.source, destination=destination, reason="not the short code")
            return
        user = self.config.user_of(message.source)
        if user is None:
            log.info("MO from %s ignored: not a subscriber", message.source)
            self.events.add("mo_ignored", source=message.source, text=message.text, reason="not a subscriber")
            return
        keyword = " ".join(message.text.split()).upper()
        if keyword == "CALL ME":
            self.events.add("callback_requested", service="callback", user=user, source=message.source)
            self.engine.post(lambda: self.services.callback(user))
            return
        match = _FWD.match(keyword)
        if match is not None:
            target = match.group("target")
            if target == "OFF":
                self.ctx.background(self.forward, user, None)
            else:
                self.ctx.background(self.forward, user, " ".join(message.text.split())[4:].strip())
            return
        self.events.add("mo_ignored", source=message.source, text=message.text, reason="unknown keyword")
        self.sms.send(message.source, HELP, purpose="help")

    def forward(self, user: str, target: str | None) -> None:
        """Worker thread: set or clear forwarding on the proxy, then confirm by SMS."""
        url = self.config.forwarding_rpc
        if target is not None:
            target = self.config.user_of(target) or target  # a subscriber's MSISDN names their SIP user
            if not USER.match(target):
                self.events.add("forwarding_failed", user=user, target=target, reason="not a user or number")
                self.ctx.text(user, f"Cannot forward calls to '{target[:20]}': send FWD and a number.", "forwarding")
                return
        if url is None:
            self.events.add("forwarding_failed", user=user, target=target, reason="forwarding_rpc not configured")
            self.ctx.text(user, "Call forwarding is not available.", "forwarding")
            return
        timeout = self.config.settings.rpc_timeout
        try:
            if target is None:
                result: Any = rpc.clear_forwarding(url, user, timeout=timeout)
            else:
                result = rpc.set_forwarding(url, user, target, timeout=timeout)
        except rpc.RpcError as error:
            log.warning("forwarding for %s: %s", user, error)
            self.events.add("forwarding_failed", user=user, target=target, reason=str(error))
            self.ctx.text(
                user, f"Call forwarding for {user} could not be changed. Please try again later.", "forwarding"
            )
            return
        if target is None:
            log.info("forwarding for %s cleared", user)
            self.events.add(
                "forwarding_cleared", user=user, method="htable.delete", params=["fwd", user], result=result
            )
            self.ctx.text(user, f"Calls to {user} are no longer forwarded", "forwarding")
        else:
            log.info("forwarding for %s set to %s", user, target)
            self.events.add(
                "forwarding_set",
                user=user,
                target=target,
                method="htable.sets",
                params=["fwd", user, target],
                result=result,
            )
            self.ctx.text(user, f"Calls to {user} now go to {target}", "forwarding")

    # --- status (HTTP threads) -----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        sip_up = self.engine.healthy
        smpp = self.sms.describe()
        return {
            "ok": sip_up and self.sms.bound,
            "sip": {"up": sip_up, "address": self.engine.transport_address, "calls": len(self.engine.snapshot())},
            "smpp": smpp,
            "uptime": round(time.monotonic() - self.started, 1),
            "events": self.events.last,
        }

    def calls(self) -> list[dict[str, Any]]:
        return self.engine.snapshot()
