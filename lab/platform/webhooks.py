"""Customer webhooks: events queued in the database with the change that caused them, sent by a dispatcher.

A delivery is ``POST <url>`` with the JSON body ``{"id", "event", "created_at", "account", "data"}`` and headers
``X-Platform-Event``, ``X-Platform-Delivery`` (the delivery id, the same on every retry) and
``X-Platform-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes with the webhook's secret>``. Anything
but 2xx is tried again after ``webhook_retry_delay`` (doubling) up to ``webhook_max_attempts`` tries, then the
delivery is ``failed``. Pending deliveries survive a restart. Calls run on a small thread pool so one slow
receiver does not hold up the others.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import json
import logging
import threading
import uuid
from datetime import timedelta
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from lab.billing.schemas import format_timestamp
from lab.platform.context import Platform
from lab.platform.models import Account, Webhook, WebhookDelivery, utcnow

log = logging.getLogger("lab.platform.webhooks")

SIGNATURE_HEADER = "X-Platform-Signature"
EVENT_HEADER = "X-Platform-Event"
DELIVERY_HEADER = "X-Platform-Delivery"
USER_AGENT = "telco-robot lab platform API"
WORKERS = 4
BATCH = 50
IDLE_WAIT = 0.2


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``: ``sha256=`` and the hex HMAC-SHA256 with ``secret``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def enqueue(session: Session, account: Account, event: str, data: dict[str, Any]) -> int:
    """Queue ``event`` for every webhook of ``account`` that subscribed to it (in the caller's transaction)."""
    hooks = session.scalars(select(Webhook).where(Webhook.account_id == account.id).order_by(Webhook.id)).all()
    queued = 0
    for hook in hooks:
        if event not in hook.events:
            continue
        delivery_id = str(uuid.uuid4())
        created = utcnow()
        payload = {
            "id": delivery_id,
            "event": event,
            "created_at": format_timestamp(created),
            "account": account.username,
            "data": data,
        }
        session.add(
            WebhookDelivery(
                id=delivery_id,
                webhook_id=hook.id,
                event=event,
                payload=json.dumps(payload, separators=(",", ":"), default=str),
                created_at=created,
                next_attempt_at=created,
            )
        )
        queued += 1
    return queued


class WebhookDispatcher:
    """Sends due deliveries in the background; ``platform.webhook_wakeup`` makes it look at once."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.tuning = platform.config.tuning
        self._http = requests.Session()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="webhook")
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.platform.webhook_wakeup.set()
        self._thread.join(timeout=5)
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._dispatch_due()
            except Exception:  # the loop must survive a database hiccup; the next tick tries again
                log.exception("webhook dispatcher: cannot read due deliveries")
            self.platform.webhook_wakeup.wait(IDLE_WAIT)
            self.platform.webhook_wakeup.clear()

    def _dispatch_due(self) -> None:
        with self.platform.sessions() as session:
            due = session.scalars(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= utcnow())
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(BATCH)
            ).all()
        for delivery_id in due:
            with self._lock:
                if delivery_id in self._in_flight:
                    continue
                self._in_flight.add(delivery_id)
            try:
                self._executor.submit(self._deliver, delivery_id)
            except RuntimeError:  # shutting down
                with self._lock:
                    self._in_flight.discard(delivery_id)
                return

    def _deliver(self, delivery_id: str) -> None:
        try:
            with self.platform.sessions() as session:
                delivery = session.get(WebhookDelivery, delivery_id)
                hook = session.get(Webhook, delivery.webhook_id) if delivery is not None else None
                if delivery is None or hook is None or delivery.status != "pending":
                    return
                url, secret, body, event = hook.url, hook.secret, delivery.payload.encode("utf-8"), delivery.event
            status, error = self._post(url, secret, body, event, delivery_id)
            with self.platform.sessions() as session:
                delivery = session.get(WebhookDelivery, delivery_id)
                if delivery is None:
                    return
                delivery.attempts += 1
                delivery.last_status = status
                delivery.last_error = error
                if status is not None and 200 <= status < 300:
                    delivery.status = "delivered"
                    delivery.delivered_at = utcnow()
                elif delivery.attempts >= self.tuning.webhook_max_attempts:
                    delivery.status = "failed"
                    log.warning(
                        "webhook %s (%s) to %s given up after %d tries", delivery_id, event, url, delivery.attempts
                    )
                else:
                    pause = self.tuning.webhook_retry_delay * 2 ** (delivery.attempts - 1)
                    delivery.next_attempt_at = utcnow() + timedelta(seconds=pause)
                    log.info(
                        "webhook %s (%s) to %s: %s; retry in %g s", delivery_id, event, url, error or status, pause
                    )
                session.commit()
        except Exception:
            log.exception("webhook %s: delivery failed unexpectedly", delivery_id)
        finally:
            with self._lock:
                self._in_flight.discard(delivery_id)

    def _post(self, url: str, secret: str, body: bytes, event: str, delivery_id: str) -> tuple[int | None, str | None]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: event,
            DELIVERY_HEADER: delivery_id,
            SIGNATURE_HEADER: sign(secret, body),
        }
        try:
            response = self._http.post(url, data=body, headers=headers, timeout=self.tuning.webhook_timeout)
        except requests.Timeout:
            return None, f"no answer within {self.tuning.webhook_timeout:g} s"
        except requests.RequestException as error:
            return None, type(error).__name__
        outcome = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        return response.status_code, outcome
