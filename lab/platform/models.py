"""SQLAlchemy models of the platform's own database; every customer resource belongs to one ``Account``.

Times are stored as naive UTC and read back timezone-aware (``UTCDateTime``, shared with the billing
service). The CDR table is not here: it belongs to the SIP proxy and is mapped read-only in ``cdrs.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lab.billing.models import UTCDateTime, utcnow

ACCOUNT_STATUSES = ("unverified", "active")
CALLER_ID_POLICIES = ("passthrough", "fixed", "from_pool")
TARGET_TYPES = ("trunk", "user", "application")
SMS_STATUSES = ("queued", "accepted", "delivered", "failed")
FINAL_SMS_STATUSES = ("delivered", "failed")
CAMPAIGN_STATUSES = ("draft", "running", "completed", "cancelled")
RECIPIENT_STATUSES = ("pending", "queued", "accepted", "delivered", "failed", "cancelled")
WEBHOOK_EVENTS = ("sms.delivered", "sms.failed", "cdr.completed", "onboarding.verified")
DELIVERY_STATUSES = ("pending", "delivered", "failed")
ONBOARDING_STATUSES = ("pending", "verified", "locked", "superseded")

__all__ = ["UTCDateTime", "utcnow"]


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Base(DeclarativeBase):
    """Declarative base of the platform tables."""


class Setting(Base):
    """Small persistent values: the DLR callback secret, the CDR cursor."""

    __tablename__ = "platform_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class Account(Base):
    """A customer account: one API consumer of the gateway (``X-Consumer-Username``)."""

    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint(_in("status", ACCOUNT_STATUSES), name="ck_accounts_status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    consumer_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="unverified")
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Trunk(Base):
    __tablename__ = "trunks"
    __table_args__ = (
        UniqueConstraint("account_id", "name", name="uq_trunks_account_name"),
        CheckConstraint(_in("caller_id_policy", CALLER_ID_POLICIES), name="ck_trunks_policy"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    sip_username: Mapped[str] = mapped_column(String(64), unique=True)
    sip_password: Mapped[str] = mapped_column(String(64))
    allowed_ips: Mapped[list[str]] = mapped_column(JSON, default=list)
    caller_id_policy: Mapped[str] = mapped_column(String(16), default="fixed")
    number: Mapped[str] = mapped_column(String(16))
    caller_id_pool: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RoutingRule(Base):
    __tablename__ = "routing_rules"
    __table_args__ = (CheckConstraint(_in("target_type", TARGET_TYPES), name="ck_routing_rules_target_type"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(32), index=True)
    target_type: Mapped[str] = mapped_column(String(16))
    trunk_id: Mapped[int | None] = mapped_column(ForeignKey("trunks.id"))
    user: Mapped[str | None] = mapped_column(String(64))
    uri: Mapped[str | None] = mapped_column(String(255))
    priority: Mapped[int] = mapped_column(Integer, default=100)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallerId(Base):
    """The number presented on outbound calls of one trunk or SIP user (the ``cli`` table's entry)."""

    __tablename__ = "caller_ids"
    __table_args__ = (CheckConstraint("subject_type IN ('trunk', 'user')", name="ck_caller_ids_subject_type"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    subject_type: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(64), unique=True)  # the trunk's SIP username, or the user
    trunk_id: Mapped[int | None] = mapped_column(ForeignKey("trunks.id"))
    number: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event for one webhook: the outbox the dispatcher works through (survives a restart)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="ck_webhook_deliveries_status"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Template(Base):
    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("account_id", "name", name="uq_templates_account_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (CheckConstraint(_in("status", CAMPAIGN_STATUSES), name="ck_campaigns_status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    sender: Mapped[str] = mapped_column(String(20))
    text: Mapped[str | None] = mapped_column(Text)
    template_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id"))
    coding: Mapped[str] = mapped_column(String(8), default="auto")
    rate_per_second: Mapped[float] = mapped_column(Float, default=10.0)
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CampaignRecipient(Base):
    __tablename__ = "campaign_recipients"
    __table_args__ = (
        UniqueConstraint("campaign_id", "to", name="uq_campaign_recipients_to"),
        CheckConstraint(_in("status", RECIPIENT_STATUSES), name="ck_campaign_recipients_status"),
        Index("ix_campaign_recipients_status", "campaign_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    position: Mapped[int] = mapped_column(Integer)
    to: Mapped[str] = mapped_column(String(16))
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    sms_id: Mapped[str | None] = mapped_column(String(36))
    error: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SmsMessage(Base):
    __tablename__ = "sms_messages"
    __table_args__ = (
        CheckConstraint(_in("status", SMS_STATUSES), name="ck_sms_messages_status"),
        Index("ix_sms_messages_account_created", "account_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    to: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    coding: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    gateway_id: Mapped[str | None] = mapped_column(String(64), index=True)
    gateway_status: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(300))
    template_id: Mapped[int | None] = mapped_column(Integer)
    campaign_id: Mapped[int | None] = mapped_column(Integer, index=True)
    recipient_id: Mapped[int | None] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(16), default="api")  # api | campaign | onboarding
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Onboarding(Base):
    __tablename__ = "onboardings"
    __table_args__ = (CheckConstraint(_in("status", ONBOARDING_STATUSES), name="ck_onboardings_status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str] = mapped_column(String(16))
    code_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sms_id: Mapped[str | None] = mapped_column(String(36))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
