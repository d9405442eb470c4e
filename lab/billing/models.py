"""SQLAlchemy models: one table per entity of ``docs/billing-api.md``; money in integer ``*_cents`` columns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

CUSTOMER_STATUSES = ("active", "suspended", "closed")
VOUCHER_STATUSES = ("unused", "sold", "redeemed", "expired")
PAYMENT_STATUSES = ("pending", "completed", "failed")
PAYMENT_METHODS = ("mpesa", "card", "cash", "bank", "wallet")
PAYMENT_PURPOSES = ("voucher", "topup")
TRANSACTION_KINDS = ("credit", "debit")
ROUTER_STATUSES = ("online", "offline")
SESSION_STATUSES = ("active", "expired", "terminated")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (portable to SQLite); read back as timezone-aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the billing tables."""


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (CheckConstraint(_in("status", CUSTOMER_STATUSES), name="ck_customers_status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    phone: Mapped[str] = mapped_column(String(16), unique=True)
    site: Mapped[str | None] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Balance(Base):
    __tablename__ = "balances"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Package(Base):
    __tablename__ = "packages"
    __table_args__ = (
        CheckConstraint("price_cents > 0", name="ck_packages_price"),
        CheckConstraint("validity_hours > 0", name="ck_packages_validity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    data_quota_mb: Mapped[int | None] = mapped_column(BigInteger)
    time_quota_minutes: Mapped[int | None] = mapped_column(BigInteger)
    validity_hours: Mapped[int] = mapped_column(Integer)
    site: Mapped[str | None] = mapped_column(String(100), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Voucher(Base):
    __tablename__ = "vouchers"
    __table_args__ = (
        CheckConstraint(_in("status", VOUCHER_STATUSES), name="ck_vouchers_status"),
        Index("ix_vouchers_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="unused")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sold_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="ck_payments_amount"),
        CheckConstraint(_in("status", PAYMENT_STATUSES), name="ck_payments_status"),
        CheckConstraint(_in("method", PAYMENT_METHODS), name="ck_payments_method"),
        CheckConstraint(_in("purpose", PAYMENT_PURPOSES), name="ck_payments_purpose"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    voucher_id: Mapped[int | None] = mapped_column(ForeignKey("vouchers.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    reference: Mapped[str | None] = mapped_column(String(128))
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    # No FK: invoices.payment_id already points the other way, and a cycle would need ALTER on SQLite.
    invoice_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (CheckConstraint("amount_cents > 0", name="ck_invoices_amount"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), unique=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="paid")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Transaction(Base):
    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint(_in("kind", TRANSACTION_KINDS), name="ck_transactions_kind"),
        CheckConstraint(
            "(kind = 'credit' AND amount_cents > 0) OR (kind = 'debit' AND amount_cents < 0)",
            name="ck_transactions_sign",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    balance_after_cents: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Router(Base):
    __tablename__ = "routers"
    __table_args__ = (CheckConstraint(_in("status", ROUTER_STATUSES), name="ck_routers_status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    ip: Mapped[str] = mapped_column(String(45), unique=True)
    site: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(16), default="online")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HotspotSession(Base):
    """A hotspot session (table ``sessions``); named so it is not mistaken for an ORM ``Session``."""

    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint(_in("status", SESSION_STATUSES), name="ck_sessions_status"),
        Index("ix_sessions_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    voucher_id: Mapped[int] = mapped_column(ForeignKey("vouchers.id"), unique=True)
    router_id: Mapped[int] = mapped_column(ForeignKey("routers.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    data_quota_mb: Mapped[int | None] = mapped_column(BigInteger)
    time_quota_minutes: Mapped[int | None] = mapped_column(BigInteger)
    data_used_mb: Mapped[int] = mapped_column(BigInteger, default=0)
