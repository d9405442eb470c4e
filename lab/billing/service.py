"""The billing rules, one function per operation; each takes an ORM ``Session`` and knows nothing of HTTP.

Every write function either commits once or raises an ``ApiError`` before anything is committed; the caller's
session is then closed, which rolls back whatever was flushed. Rows that a read-modify-write depends on are
locked with ``SELECT ... FOR UPDATE`` (PostgreSQL); on SQLite every transaction starts with
``BEGIN IMMEDIATE`` (see ``db.py``), which serialises writers.
"""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lab.billing.errors import ConflictError, InjectedFaultError, InvalidError, NotFoundError
from lab.billing.models import (
    Balance,
    Base,
    Customer,
    HotspotSession,
    Invoice,
    Package,
    Payment,
    Router,
    Transaction,
    Voucher,
    utcnow,
)
from lab.billing.schemas import (
    CustomerCreate,
    CustomerUpdate,
    PackageCreate,
    PackageUpdate,
    PaymentCreate,
    RouterCreate,
    RouterUpdate,
    SessionCreate,
    VoucherCreate,
    format_cents,
    format_timestamp,
)

M = TypeVar("M", bound=Base)
AnySelect = Select[*tuple[Any, ...]]
S = TypeVar("S", bound=AnySelect)

VOUCHER_VALIDITY = timedelta(days=30)
VOUCHER_CODE_ALPHABET = string.ascii_uppercase + string.digits
VOUCHER_CODE_LENGTH = 12
FAULT_AFTER_INVOICE = "after-invoice"
# Serialises expiry sweeps on PostgreSQL (pg_advisory_xact_lock key), so two sweeps never deadlock.
SWEEP_LOCK_KEY = 0x42_494C4C


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _require(session: Session, model: type[M], ident: int, field: str, *, lock: bool = False) -> M:
    """The row with primary key ``ident``, locked ``FOR UPDATE`` when asked; ``NotFoundError(field)`` otherwise."""
    entity = model.__tablename__.rstrip("s")
    statement = select(model).where(model.__mapper__.primary_key[0] == ident)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    row = session.scalars(statement).first()
    if row is None:
        raise NotFoundError(field, f"{field} {ident} names no {entity}")
    return row


def _list(session: Session, statement: AnySelect) -> list[Any]:
    return list(session.scalars(statement))


def _where(statement: S, *conditions: ColumnElement[bool] | None) -> S:
    for condition in conditions:
        if condition is not None:
            statement = statement.where(condition)
    return statement


# --- expiry ---------------------------------------------------------------------------------------------


def sweep_expired(session: Session, now: datetime | None = None) -> None:
    """Persist expiry: vouchers and active sessions past ``expires_at`` become ``expired``; commits.

    Run in its own transaction before a request's work, so a request that is then rejected still leaves the
    expiry behind and SQL over the ``status`` columns agrees with what the API reports.
    """
    now = now or utcnow()
    if _is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SWEEP_LOCK_KEY})
    session.execute(
        update(Voucher)
        .where(Voucher.status.in_(("unused", "sold")), Voucher.expires_at <= now)
        .values(status="expired")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(HotspotSession)
        .where(HotspotSession.status == "active", HotspotSession.expires_at <= now)
        .values(status="expired", ended_at=HotspotSession.expires_at)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _expire_voucher_if_due(voucher: Voucher, now: datetime) -> None:
    if voucher.status in ("unused", "sold") and voucher.expires_at <= now:
        voucher.status = "expired"


def _expire_session_if_due(hotspot_session: HotspotSession, now: datetime) -> None:
    if hotspot_session.status == "active" and hotspot_session.expires_at <= now:
        hotspot_session.status = "expired"
        hotspot_session.ended_at = hotspot_session.expires_at


# --- customers ------------------------------------------------------------------------------------------


def _customer_conflict(session: Session, email: str, phone: str) -> ConflictError | None:
    if session.scalars(select(Customer.id).where(Customer.email == email)).first() is not None:
        return ConflictError("email", f"email '{email}' is already used by another customer")
    if session.scalars(select(Customer.id).where(Customer.phone == phone)).first() is not None:
        return ConflictError("phone", f"phone '{phone}' is already used by another customer")
    return None


def create_customer(session: Session, data: CustomerCreate) -> Customer:
    conflict = _customer_conflict(session, data.email, data.phone)
    if conflict is not None:
        raise conflict
    now = utcnow()
    customer = Customer(
        name=data.name, email=data.email, phone=data.phone, site=data.site, status="active", created_at=now
    )
    session.add(customer)
    try:
        session.flush()
        session.add(Balance(customer_id=customer.id, balance_cents=0, updated_at=now))
        session.commit()
    except IntegrityError:  # a parallel request took the e-mail or phone first
        session.rollback()
        conflict = _customer_conflict(session, data.email, data.phone)
        if conflict is None:
            raise
        raise conflict from None
    return customer


def get_customer(session: Session, customer_id: int) -> Customer:
    return _require(session, Customer, customer_id, "customer_id")


def list_customers(
    session: Session, *, site: str | None = None, email: str | None = None, phone: str | None = None
) -> list[Customer]:
    statement = _where(
        select(Customer),
        Customer.site == site if site else None,
        Customer.email == email.strip().lower() if email else None,
        Customer.phone == phone.strip() if phone else None,
    )
    return _list(session, statement.order_by(Customer.id))


def update_customer(session: Session, customer_id: int, data: CustomerUpdate) -> Customer:
    customer = _require(session, Customer, customer_id, "customer_id", lock=True)
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        setattr(customer, name, value)
    session.commit()
    return customer


def get_balance(session: Session, customer_id: int) -> Balance:
    get_customer(session, customer_id)
    return session.scalars(select(Balance).where(Balance.customer_id == customer_id)).one()


def list_customer_transactions(session: Session, customer_id: int) -> list[Transaction]:
    get_customer(session, customer_id)
    return list_transactions(session, customer_id=customer_id)


def list_customer_payments(session: Session, customer_id: int) -> list[Payment]:
    get_customer(session, customer_id)
    return list_payments(session, customer_id=customer_id)


def list_customer_invoices(session: Session, customer_id: int) -> list[Invoice]:
    get_customer(session, customer_id)
    return list_invoices(session, customer_id=customer_id)


# --- packages -------------------------------------------------------------------------------------------


def create_package(session: Session, data: PackageCreate) -> Package:
    package = Package(
        name=data.name,
        price_cents=data.price,
        currency=data.currency,
        data_quota_mb=data.data_quota_mb,
        time_quota_minutes=data.time_quota_minutes,
        validity_hours=data.validity_hours,
        site=data.site,
        active=data.active,
        created_at=utcnow(),
    )
    session.add(package)
    session.commit()
    return package


def get_package(session: Session, package_id: int) -> Package:
    return _require(session, Package, package_id, "package_id")


def list_packages(session: Session, *, active: bool | None = None, site: str | None = None) -> list[Package]:
    statement = _where(
        select(Package),
        Package.active == active if active is not None else None,
        Package.site == site if site else None,
    )
    return _list(session, statement.order_by(Package.id))


def update_package(session: Session, package_id: int, data: PackageUpdate) -> Package:
    package = _require(session, Package, package_id, "package_id", lock=True)
    changes = data.model_dump(exclude_unset=True)
    if "price" in changes:
        package.price_cents = changes.pop("price")
    for name, value in changes.items():
        setattr(package, name, value)
    session.commit()
    return package


# --- vouchers -------------------------------------------------------------------------------------------


def _new_voucher_code(session: Session) -> str:
    while True:
        code = "".join(secrets.choice(VOUCHER_CODE_ALPHABET) for _ in range(VOUCHER_CODE_LENGTH))
        if session.scalars(select(Voucher.id).where(Voucher.code == code)).first() is None:
            return code


def create_voucher(session: Session, data: VoucherCreate) -> Voucher:
    now = utcnow()
    package = _require(session, Package, data.package_id, "package_id")
    if not package.active:
        raise ConflictError("package_id", f"package_id {package.id} names an inactive package; activate it first")
    if data.customer_id is not None:
        _require(session, Customer, data.customer_id, "customer_id")
    if data.code is not None:
        if session.scalars(select(Voucher.id).where(Voucher.code == data.code)).first() is not None:
            raise ConflictError("code", f"code '{data.code}' is already used by another voucher")
        code = data.code
    else:
        code = _new_voucher_code(session)
    expires_at = data.expires_at or now + VOUCHER_VALIDITY
    voucher = Voucher(
        code=code,
        package_id=package.id,
        customer_id=data.customer_id,
        # Created already past its expiry: stored as expired right away, as every later read would report it.
        status="expired" if expires_at <= now else "unused",
        expires_at=expires_at,
        created_at=now,
    )
    session.add(voucher)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        if session.scalars(select(Voucher.id).where(Voucher.code == code)).first() is None:
            raise
        raise ConflictError("code", f"code '{code}' is already used by another voucher") from None
    return voucher


def get_voucher(session: Session, voucher_id: int) -> Voucher:
    return _require(session, Voucher, voucher_id, "voucher_id")


def list_vouchers(
    session: Session, *, code: str | None = None, customer_id: int | None = None, status: str | None = None
) -> list[Voucher]:
    statement = _where(
        select(Voucher),
        Voucher.code == code if code else None,
        Voucher.customer_id == customer_id if customer_id is not None else None,
        Voucher.status == status if status else None,
    )
    return _list(session, statement.order_by(Voucher.id))


def expire_voucher(session: Session, voucher_id: int) -> Voucher:
    voucher = _require(session, Voucher, voucher_id, "voucher_id", lock=True)
    _expire_voucher_if_due(voucher, utcnow())
    if voucher.status not in ("unused", "sold"):
        raise ConflictError("status", f"voucher {voucher.id} is '{voucher.status}'; only 'unused' or 'sold' can expire")
    voucher.status = "expired"
    session.commit()
    return voucher


# --- payments -------------------------------------------------------------------------------------------


def _payment_by_key(session: Session, key: str) -> Payment | None:
    return session.scalars(select(Payment).where(Payment.idempotency_key == key)).first()


def _check_voucher_payable(voucher: Voucher, customer_id: int, now: datetime) -> None:
    _expire_voucher_if_due(voucher, now)
    if voucher.status != "unused":
        raise ConflictError(
            "voucher_id", f"voucher_id {voucher.id} is '{voucher.status}'; only an 'unused' voucher can be paid for"
        )
    if voucher.customer_id is not None and voucher.customer_id != customer_id:
        raise ConflictError(
            "voucher_id", f"voucher_id {voucher.id} belongs to customer {voucher.customer_id}, not {customer_id}"
        )


def _balance_cents(session: Session, customer_id: int, *, lock: bool = False) -> Balance:
    statement = select(Balance).where(Balance.customer_id == customer_id)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return session.scalars(statement).one()


def _insufficient(amount_cents: int, balance_cents: int) -> InvalidError:
    return InvalidError(
        "amount",
        f"amount '{format_cents(amount_cents)}' exceeds the wallet balance '{format_cents(balance_cents)}'",
    )


def create_payment(session: Session, data: PaymentCreate, header_key: str | None = None) -> tuple[Payment, bool]:
    """A pending payment and ``True``; or the first payment with the same idempotency key and ``False``."""
    header_key = header_key.strip() if header_key is not None else None
    if header_key == "":
        raise InvalidError("idempotency_key", "Idempotency-Key header must not be empty")
    if header_key is not None and data.idempotency_key is not None and header_key != data.idempotency_key:
        raise InvalidError(
            "idempotency_key",
            f"idempotency_key '{data.idempotency_key}' differs from the Idempotency-Key header '{header_key}'",
        )
    key = data.idempotency_key or header_key
    if key is not None:
        existing = _payment_by_key(session, key)
        if existing is not None:
            return existing, False

    now = utcnow()
    customer = _require(session, Customer, data.customer_id, "customer_id")
    purpose = "voucher" if data.voucher_id is not None else "topup"
    if data.purpose is not None and data.purpose != purpose:
        raise InvalidError("purpose", f"purpose must be '{purpose}' (it follows from voucher_id), got '{data.purpose}'")
    if data.voucher_id is None:
        if data.method == "wallet":
            raise InvalidError("method", "method 'wallet' is not allowed for a top-up; use mpesa, card, cash or bank")
    else:
        voucher = _require(session, Voucher, data.voucher_id, "voucher_id")
        _check_voucher_payable(voucher, customer.id, now)
        package = session.get_one(Package, voucher.package_id)
        if data.amount != package.price_cents:
            raise InvalidError(
                "amount",
                f"amount must equal the price of package {package.id}, '{format_cents(package.price_cents)}', "
                f"got '{format_cents(data.amount)}'",
            )
        if data.method == "wallet":
            balance = _balance_cents(session, customer.id)
            if balance.balance_cents < data.amount:
                raise _insufficient(data.amount, balance.balance_cents)

    payment = Payment(
        customer_id=customer.id,
        voucher_id=data.voucher_id,
        purpose=purpose,
        amount_cents=data.amount,
        method=data.method,
        status="pending",
        idempotency_key=key,
        created_at=now,
    )
    session.add(payment)
    try:
        session.commit()
    except IntegrityError:  # a parallel request with the same key won the race: answer with its payment
        session.rollback()
        existing = _payment_by_key(session, key) if key is not None else None
        if existing is None:
            raise
        return existing, False
    return payment, True


def complete_payment(
    session: Session, payment_id: int, reference: str | None = None, fault: str | None = None
) -> Payment:
    """Complete a pending payment: ledger, invoice, balance, voucher and payment in one transaction.

    ``fault="after-invoice"`` (lab fault injection) raises after everything is flushed and before commit.
    """
    now = utcnow()
    payment = _require(session, Payment, payment_id, "payment_id", lock=True)
    if payment.status != "pending":
        raise ConflictError(
            "status", f"payment {payment.id} is '{payment.status}'; only a 'pending' payment can complete"
        )
    balance = _balance_cents(session, payment.customer_id, lock=True)
    amount = payment.amount_cents
    entries: list[tuple[str, int, str]]
    if payment.voucher_id is None:
        entries = [("credit", amount, f"Top-up by {payment.method}, payment #{payment.id}")]
        description = f"Wallet top-up {format_cents(amount)} USD by {payment.method}"
        voucher = None
    else:
        voucher = _require(session, Voucher, payment.voucher_id, "voucher_id", lock=True)
        _check_voucher_payable(voucher, payment.customer_id, now)
        package = session.get_one(Package, voucher.package_id)
        purchase = f"Voucher {voucher.code} ({package.name})"
        description = f"{purchase}, {format_cents(amount)} USD by {payment.method}"
        if payment.method == "wallet":
            if balance.balance_cents < amount:
                raise _insufficient(amount, balance.balance_cents)
            entries = [("debit", -amount, f"{purchase} paid from wallet, payment #{payment.id}")]
        else:
            entries = [
                ("credit", amount, f"Payment #{payment.id} received by {payment.method}"),
                ("debit", -amount, f"{purchase} purchase, payment #{payment.id}"),
            ]

    running = balance.balance_cents
    for kind, cents, entry_description in entries:
        running += cents
        session.add(
            Transaction(
                customer_id=payment.customer_id,
                payment_id=payment.id,
                kind=kind,
                amount_cents=cents,
                balance_after_cents=running,
                description=entry_description,
                created_at=now,
            )
        )
    invoice = Invoice(
        number=f"PENDING-{uuid.uuid4().hex}",  # replaced by INV-<id> once the id is known
        customer_id=payment.customer_id,
        payment_id=payment.id,
        amount_cents=amount,
        description=description,
        status="paid",
        issued_at=now,
    )
    session.add(invoice)
    session.flush()
    invoice.number = f"INV-{invoice.id:06d}"

    balance.balance_cents = running
    balance.updated_at = now
    if voucher is not None:
        voucher.status = "sold"
        voucher.sold_at = now
        voucher.customer_id = payment.customer_id
    payment.status = "completed"
    payment.completed_at = now
    payment.invoice_id = invoice.id
    if reference is not None:
        payment.reference = reference
    session.flush()
    if fault == FAULT_AFTER_INVOICE:
        raise InjectedFaultError(f"injected fault '{FAULT_AFTER_INVOICE}' while completing payment {payment.id}")
    session.commit()
    return payment


def fail_payment(session: Session, payment_id: int, reason: str) -> Payment:
    payment = _require(session, Payment, payment_id, "payment_id", lock=True)
    if payment.status != "pending":
        raise ConflictError("status", f"payment {payment.id} is '{payment.status}'; only a 'pending' payment can fail")
    payment.status = "failed"
    payment.failure_reason = reason
    session.commit()
    return payment


def get_payment(session: Session, payment_id: int) -> Payment:
    return _require(session, Payment, payment_id, "payment_id")


def list_payments(session: Session, *, customer_id: int | None = None, status: str | None = None) -> list[Payment]:
    statement = _where(
        select(Payment),
        Payment.customer_id == customer_id if customer_id is not None else None,
        Payment.status == status if status else None,
    )
    return _list(session, statement.order_by(Payment.id))


# --- invoices and ledger --------------------------------------------------------------------------------


def get_invoice(session: Session, invoice_id: int) -> Invoice:
    return _require(session, Invoice, invoice_id, "invoice_id")


def list_invoices(session: Session, *, payment_id: int | None = None, customer_id: int | None = None) -> list[Invoice]:
    statement = _where(
        select(Invoice),
        Invoice.payment_id == payment_id if payment_id is not None else None,
        Invoice.customer_id == customer_id if customer_id is not None else None,
    )
    return _list(session, statement.order_by(Invoice.id))


def get_transaction(session: Session, transaction_id: int) -> Transaction:
    return _require(session, Transaction, transaction_id, "transaction_id")


def list_transactions(
    session: Session, *, customer_id: int | None = None, payment_id: int | None = None
) -> list[Transaction]:
    statement = _where(
        select(Transaction),
        Transaction.customer_id == customer_id if customer_id is not None else None,
        Transaction.payment_id == payment_id if payment_id is not None else None,
    )
    return _list(session, statement.order_by(Transaction.id))


# --- routers --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouterView:
    """A router row and its number of active sessions (computed, not stored)."""

    router: Router
    active_sessions: int


def _router_views(session: Session, routers: Sequence[Router]) -> list[RouterView]:
    if not routers:
        return []
    counts = _grouped(
        session,
        select(HotspotSession.router_id, func.count())
        .where(HotspotSession.status == "active", HotspotSession.router_id.in_([r.id for r in routers]))
        .group_by(HotspotSession.router_id),
    )
    return [RouterView(router, int(counts.get(router.id, 0))) for router in routers]


def create_router(session: Session, data: RouterCreate) -> RouterView:
    if session.scalars(select(Router.id).where(Router.ip == data.ip)).first() is not None:
        raise ConflictError("ip", f"ip '{data.ip}' is already used by another router")
    router = Router(name=data.name, ip=data.ip, site=data.site, status=data.status, created_at=utcnow())
    session.add(router)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        if session.scalars(select(Router.id).where(Router.ip == data.ip)).first() is None:
            raise
        raise ConflictError("ip", f"ip '{data.ip}' is already used by another router") from None
    return RouterView(router, 0)


def get_router(session: Session, router_id: int) -> RouterView:
    return _router_views(session, [_require(session, Router, router_id, "router_id")])[0]


def list_routers(session: Session, *, site: str | None = None, status: str | None = None) -> list[RouterView]:
    statement = _where(
        select(Router), Router.site == site if site else None, Router.status == status if status else None
    )
    return _router_views(session, _list(session, statement.order_by(Router.id)))


def update_router(session: Session, router_id: int, data: RouterUpdate) -> RouterView:
    router = _require(session, Router, router_id, "router_id", lock=True)
    for name, value in data.model_dump(exclude_unset=True).items():
        setattr(router, name, value)
    session.commit()
    return get_router(session, router_id)


# --- sessions -------------------------------------------------------------------------------------------


def create_session(session: Session, data: SessionCreate) -> HotspotSession:
    now = utcnow()
    voucher = _require(session, Voucher, data.voucher_id, "voucher_id", lock=True)
    router = _require(session, Router, data.router_id, "router_id")
    _expire_voucher_if_due(voucher, now)
    if voucher.status == "unused":
        raise ConflictError("voucher_id", f"voucher_id {voucher.id} is 'unused': it must be paid for (sold) first")
    if voucher.status == "redeemed":
        raise ConflictError("voucher_id", f"voucher_id {voucher.id} is already 'redeemed'")
    if voucher.status == "expired":
        raise ConflictError(
            "voucher_id", f"voucher_id {voucher.id} is 'expired' (expires_at {format_timestamp(voucher.expires_at)})"
        )
    if router.status != "online":
        raise ConflictError(
            "router_id", f"router_id {router.id} is '{router.status}'; sessions need an 'online' router"
        )
    if voucher.customer_id is None:  # pragma: no cover - a sold voucher always has its buyer
        raise ConflictError("voucher_id", f"voucher_id {voucher.id} has no customer")
    package = session.get_one(Package, voucher.package_id)
    hotspot_session = HotspotSession(
        customer_id=voucher.customer_id,
        voucher_id=voucher.id,
        router_id=router.id,
        status="active",
        started_at=now,
        expires_at=now + timedelta(hours=package.validity_hours),
        data_quota_mb=package.data_quota_mb,
        time_quota_minutes=package.time_quota_minutes,
        data_used_mb=0,
    )
    session.add(hotspot_session)
    voucher.status = "redeemed"
    voucher.redeemed_at = now
    try:
        session.commit()
    except IntegrityError:  # a parallel request redeemed the voucher first
        session.rollback()
        raise ConflictError("voucher_id", f"voucher_id {data.voucher_id} is already 'redeemed'") from None
    return hotspot_session


def get_session(session: Session, session_id: int) -> HotspotSession:
    return _require(session, HotspotSession, session_id, "session_id")


def list_sessions(
    session: Session, *, router_id: int | None = None, customer_id: int | None = None, status: str | None = None
) -> list[HotspotSession]:
    statement = _where(
        select(HotspotSession),
        HotspotSession.router_id == router_id if router_id is not None else None,
        HotspotSession.customer_id == customer_id if customer_id is not None else None,
        HotspotSession.status == status if status else None,
    )
    return _list(session, statement.order_by(HotspotSession.id))


def _active_session(session: Session, session_id: int, action: str) -> HotspotSession:
    hotspot_session = _require(session, HotspotSession, session_id, "session_id", lock=True)
    _expire_session_if_due(hotspot_session, utcnow())
    if hotspot_session.status != "active":
        raise ConflictError(
            "status", f"session {hotspot_session.id} is '{hotspot_session.status}'; only an 'active' one can {action}"
        )
    return hotspot_session


def terminate_session(session: Session, session_id: int) -> HotspotSession:
    hotspot_session = _active_session(session, session_id, "be terminated")
    hotspot_session.status = "terminated"
    hotspot_session.ended_at = utcnow()
    session.commit()
    return hotspot_session


def record_usage(session: Session, session_id: int, data_mb: int) -> HotspotSession:
    """Add ``data_mb`` of usage; reaching the data quota expires the session."""
    hotspot_session = _active_session(session, session_id, "record usage")
    hotspot_session.data_used_mb += data_mb
    quota = hotspot_session.data_quota_mb
    if quota is not None and hotspot_session.data_used_mb >= quota:
        hotspot_session.status = "expired"
        hotspot_session.ended_at = utcnow()
    session.commit()
    return hotspot_session


# --- dashboard ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DashboardFigures:
    site: str | None
    generated_at: datetime
    customers: dict[str, int]
    packages: dict[str, int]
    vouchers: dict[str, int]
    payments: dict[str, int]
    sessions: dict[str, int]
    routers: dict[str, int]
    revenue_cents: int
    balances_cents: int


def _grouped(session: Session, statement: AnySelect) -> dict[Any, int]:
    return {key: int(count) for key, count in session.execute(statement)}


def dashboard(session: Session, site: str | None = None) -> DashboardFigures:
    """All figures, over everything or one site, read in one transaction (REPEATABLE READ on PostgreSQL)."""
    if session.in_transaction():
        session.commit()
    if _is_postgres(session):
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})

    customers = _grouped(
        session,
        _where(select(Customer.status, func.count()), Customer.site == site if site else None).group_by(
            Customer.status
        ),
    )
    packages = _grouped(
        session,
        _where(select(Package.active, func.count()), Package.site == site if site else None).group_by(Package.active),
    )
    voucher_query = select(Voucher.status, func.count())
    if site:
        voucher_query = voucher_query.join(Package, Package.id == Voucher.package_id).where(Package.site == site)
    vouchers = _grouped(session, voucher_query.group_by(Voucher.status))

    payment_query = select(Payment.status, func.count(), func.coalesce(func.sum(Payment.amount_cents), 0))
    if site:
        payment_query = payment_query.join(Customer, Customer.id == Payment.customer_id).where(Customer.site == site)
    payment_rows = session.execute(payment_query.group_by(Payment.status)).all()
    payments = {status: int(count) for status, count, _ in payment_rows}
    revenue = sum(int(total) for status, _, total in payment_rows if status == "completed")

    session_query = select(HotspotSession.status, func.count())
    if site:
        session_query = session_query.join(Router, Router.id == HotspotSession.router_id).where(Router.site == site)
    sessions = _grouped(session, session_query.group_by(HotspotSession.status))
    routers = _grouped(
        session,
        _where(select(Router.status, func.count()), Router.site == site if site else None).group_by(Router.status),
    )
    balance_query = select(func.coalesce(func.sum(Balance.balance_cents), 0))
    if site:
        balance_query = balance_query.join(Customer, Customer.id == Balance.customer_id).where(Customer.site == site)
    balances = int(session.execute(balance_query).scalar_one())
    session.commit()

    return DashboardFigures(
        site=site,
        generated_at=utcnow(),
        customers={"total": sum(customers.values()), "active": customers.get("active", 0)},
        packages={"total": sum(packages.values()), "active": packages.get(True, 0)},
        vouchers={
            "total": sum(vouchers.values()),
            **{status: vouchers.get(status, 0) for status in ("unused", "sold", "redeemed", "expired")},
        },
        payments={
            "total": sum(payments.values()),
            **{status: payments.get(status, 0) for status in ("pending", "completed", "failed")},
        },
        sessions={"total": sum(sessions.values()), "active": sessions.get("active", 0)},
        routers={"total": sum(routers.values()), "online": routers.get("online", 0)},
        revenue_cents=revenue,
        balances_cents=balances,
    )


def check_database(session: Session) -> None:
    """Raise when the database does not answer ``SELECT 1``."""
    session.execute(text("SELECT 1")).scalar_one()
