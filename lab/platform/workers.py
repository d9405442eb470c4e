"""Background work: the CDR poller (``cdr.completed`` webhooks) and the campaign sender (paced sending).

Both are threads started and stopped with the application; they log through ``logging`` and survive a failing
database call by trying again at their next tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

from sqlalchemy import func, select

from lab.platform import messaging
from lab.platform.cdrs import cdrs
from lab.platform.context import Platform
from lab.platform.models import Account, Setting, Webhook
from lab.platform.voice import Parties, cdr_out
from lab.platform.webhooks import enqueue

log = logging.getLogger("lab.platform.workers")

CDR_CURSOR_KEY = "cdr_cursor"
CDR_BATCH = 500


class CdrPoller:
    """Reads CDR rows newer than its cursor and queues ``cdr.completed`` for every account they belong to.

    The cursor (the last CDR id seen) is kept in the platform's database with the queued deliveries, so a CDR
    is announced once. On its very first start the poller begins after the rows already there.
    """

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cdr-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        interval = self.platform.config.tuning.cdr_poll_interval
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:
                log.exception("CDR poller: reading new CDRs failed; trying again")
            self._stop.wait(interval)

    def poll(self) -> int:
        """One pass: returns how many deliveries were queued."""
        with self.platform.sessions() as session:
            cursor_row = session.get(Setting, CDR_CURSOR_KEY)
            if cursor_row is None:
                with self.platform.cdr_engine.connect() as connection:
                    start = connection.execute(select(func.coalesce(func.max(cdrs.c.id), 0))).scalar_one()
                session.add(Setting(key=CDR_CURSOR_KEY, value=str(start)))
                session.commit()
                return 0
            cursor = int(cursor_row.value)
            with self.platform.cdr_engine.connect() as connection:
                rows = connection.execute(
                    select(cdrs).where(cdrs.c.id > cursor).order_by(cdrs.c.id).limit(CDR_BATCH)
                ).all()
            if not rows:
                return 0
            subscribed = session.scalars(select(Webhook.account_id).distinct()).all()
            accounts = [session.get(Account, account_id) for account_id in subscribed]
            hooks: dict[int, list[str]] = defaultdict(list)
            for hook in session.scalars(select(Webhook)).all():
                hooks[hook.account_id].extend(hook.events)
            queued = 0
            for account in accounts:
                if account is None or "cdr.completed" not in hooks[account.id]:
                    continue
                parties = Parties.of(session, account.id)
                for row in rows:
                    if parties.matches(str(row.caller), str(row.callee)):
                        queued += enqueue(session, account, "cdr.completed", cdr_out(row).model_dump(mode="json"))
            cursor_row.value = str(rows[-1].id)
            session.commit()
        if queued:
            self.platform.webhook_wakeup.set()
            log.info("CDR poller: %d new CDR(s), %d webhook delivery(ies) queued", len(rows), queued)
        return queued


class CampaignSender:
    """Sends running campaigns' recipients one by one, each campaign at its own ``rate_per_second``."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._stop = threading.Event()
        self._due: dict[int, float] = {}
        self._thread = threading.Thread(target=self._run, name="campaign-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.platform.campaign_wakeup.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        tick = self.platform.config.tuning.campaign_tick
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("campaign sender: a pass failed; trying again")
            self.platform.campaign_wakeup.wait(tick)
            self.platform.campaign_wakeup.clear()

    def tick(self) -> int:
        """One pass over the running campaigns: send to every campaign whose next message is due."""
        sent = 0
        running = messaging.running_campaigns(self.platform)
        self._due = {campaign_id: due for campaign_id, due in self._due.items() if campaign_id in dict(running)}
        for campaign_id, rate in running:
            if self._stop.is_set():
                break
            now = time.monotonic()
            if self._due.get(campaign_id, 0.0) > now:
                continue
            recipient_id = messaging.claim_next_recipient(self.platform, campaign_id)
            if recipient_id is None:
                continue
            self._due[campaign_id] = now + 1.0 / rate
            try:
                messaging.send_to_recipient(self.platform, recipient_id)
            except Exception:
                log.exception("campaign %d: sending to recipient %d failed", campaign_id, recipient_id)
            sent += 1
        return sent
