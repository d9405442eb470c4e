"""What the routes, the services and the background workers share: one `Platform` per application."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from lab.platform.config import PlatformConfig
from lab.platform.kamailio import KamailioRpc
from lab.platform.models import Setting
from lab.platform.sms_gateway import SmsGatewayClient

DLR_SECRET_KEY = "dlr_secret"


@dataclass
class Platform:
    config: PlatformConfig
    engine: Engine
    sessions: sessionmaker[Session]
    cdr_engine: Engine
    rpc: KamailioRpc
    gateway: SmsGatewayClient
    secret: bytes = b""
    # set to wake the webhook dispatcher / the campaign sender at once instead of at their next tick
    webhook_wakeup: threading.Event = field(default_factory=threading.Event)
    campaign_wakeup: threading.Event = field(default_factory=threading.Event)

    def load_secret(self) -> None:
        """The service's own secret (DLR callback tokens, code hashes), made once and kept in the database."""
        with self.sessions() as session:
            row = session.scalars(select(Setting).where(Setting.key == DLR_SECRET_KEY)).first()
            if row is None:
                row = Setting(key=DLR_SECRET_KEY, value=secrets.token_hex(32))
                session.add(row)
                session.commit()
            self.secret = bytes.fromhex(row.value)

    def token(self, purpose: str, value: str) -> str:
        """An HMAC of ``value`` for ``purpose`` with the service's secret (hex)."""
        return hmac.new(self.secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def dlr_url(self, sms_id: str) -> str:
        """Where the SMS gateway posts the receipts of message ``sms_id`` (the token proves they are ours)."""
        return f"{self.config.public_url}/internal/dlr/{sms_id}?token={self.token('dlr', sms_id)[:32]}"

    def close(self) -> None:
        self.rpc.close()
        self.gateway.close()
        self.cdr_engine.dispose()
        self.engine.dispose()
