"""Request and response models: money is a two-place decimal string here and integer cents in the database.

Validation messages are written for people: the request-validation handler in ``app.py`` turns each one into
``"<field> <message>, got <value>"``.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

MAX_CENTS = 100_000_000_00  # 100 million in major units: far beyond any lab figure, far below int64
MAX_ID = 2**63 - 1
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_PATTERN = re.compile(r"^\+[0-9]{8,15}$")
MONEY_PATTERN = re.compile(r"^[+-]?(\d+(\.\d{0,2})?|\.\d{1,2})$")


# --- formatting -----------------------------------------------------------------------------------------


def format_cents(cents: int) -> str:
    """Integer minor units as a two-place decimal string: ``1234`` → ``"12.34"``, ``-5`` → ``"-0.05"``."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole}.{fraction:02d}"


def format_timestamp(value: datetime) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``: ``2025-01-31T12:00:00.123Z``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --- input types ----------------------------------------------------------------------------------------


def parse_money(value: Any) -> int:
    """A decimal string (or number) with at most two places, as integer cents; must be > 0."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise PydanticCustomError("money_type", "must be a decimal string with two places, like '10.00'")
    text = str(value).strip()
    if not MONEY_PATTERN.match(text):
        raise PydanticCustomError("money_format", "must be a decimal string with at most two places, like '10.00'")
    try:
        cents = int((Decimal(text) * 100).to_integral_exact())
    except InvalidOperation as error:  # pragma: no cover - the pattern already rules this out
        raise PydanticCustomError("money_format", "must be a decimal string like '10.00'") from error
    if cents <= 0:
        raise PydanticCustomError("greater_than", "must be greater than 0")
    if cents > MAX_CENTS:
        raise PydanticCustomError("less_than_equal", "must be at most {limit}", {"limit": format_cents(MAX_CENTS)})
    return cents


def _email(value: str) -> str:
    if len(value) > 320 or not EMAIL_PATTERN.match(value):
        raise PydanticCustomError("email", "must be an e-mail address like 'name@example.com'")
    return value.lower()


def _phone(value: str) -> str:
    if not PHONE_PATTERN.match(value):
        raise PydanticCustomError("phone", "must be an E.164 number: '+' and 8 to 15 digits, like '+254700000001'")
    return value


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as error:
        raise PydanticCustomError("ip", "must be an IPv4 or IPv6 address, like '10.0.0.1' or '2001:db8::1'") from error


def _utc(value: datetime) -> datetime:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value.year >= 9000:
        raise PydanticCustomError("datetime_range", "must be a date before the year 9000")
    return value


Cents = Annotated[
    int,
    BeforeValidator(parse_money),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d{1,2})?$", "examples": ["10.00"]}),
]
Id = Annotated[int, Field(ge=-MAX_ID, le=MAX_ID)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Site = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Email = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_email)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_phone)]
IpAddress = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_ip)]
VoucherCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_-]{1,64}$")]
IdempotencyKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Quota = Annotated[int, Field(ge=0, le=10**12)]
UtcDateTime = Annotated[datetime, AfterValidator(_utc)]

CustomerStatus = Literal["active", "suspended", "closed"]
VoucherStatus = Literal["unused", "sold", "redeemed", "expired"]
PaymentStatus = Literal["pending", "completed", "failed"]
PaymentMethod = Literal["mpesa", "card", "cash", "bank", "wallet"]
PaymentPurpose = Literal["voucher", "topup"]
RouterStatus = Literal["online", "offline"]
SessionStatus = Literal["active", "expired", "terminated"]


def _not_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("not_null", "must not be null (leave the field out to keep its value)")
    return value


class RequestModel(BaseModel):
    """Request bodies: unknown fields are refused so a typo is not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class CustomerCreate(RequestModel):
    name: Name
    email: Email
    phone: Phone
    site: Site | None = None


class CustomerUpdate(RequestModel):
    status: CustomerStatus | None = None
    name: Name | None = None
    site: Site | None = None

    _no_null = field_validator("status", "name", mode="before")(_not_null)


class PackageCreate(RequestModel):
    name: Name
    price: Cents
    currency: Literal["USD"] = "USD"
    data_quota_mb: Quota | None = None
    time_quota_minutes: Quota | None = None
    validity_hours: Annotated[int, Field(gt=0, le=24 * 365 * 10)]
    site: Site | None = None
    active: bool = True


class PackageUpdate(RequestModel):
    active: bool | None = None
    price: Cents | None = None
    name: Name | None = None

    _no_null = field_validator("active", "price", "name", mode="before")(_not_null)


class VoucherCreate(RequestModel):
    package_id: Id
    customer_id: Id | None = None
    code: VoucherCode | None = None
    expires_at: UtcDateTime | None = None


class PaymentCreate(RequestModel):
    customer_id: Id
    amount: Cents
    method: PaymentMethod
    voucher_id: Id | None = None
    idempotency_key: IdempotencyKey | None = None
    purpose: PaymentPurpose | None = Field(
        default=None, description="Optional; derived from voucher_id. When given it must agree."
    )


class PaymentComplete(RequestModel):
    reference: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)] | None = None


class PaymentFail(RequestModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class RouterCreate(RequestModel):
    name: Name
    ip: IpAddress
    site: Site
    status: RouterStatus = "online"


class RouterUpdate(RequestModel):
    status: RouterStatus | None = None
    name: Name | None = None

    _no_null = field_validator("status", "name", mode="before")(_not_null)


class SessionCreate(RequestModel):
    voucher_id: Id
    router_id: Id


class SessionUsage(RequestModel):
    data_mb: Annotated[int, Field(ge=0, le=10**9)]


# --- output types ---------------------------------------------------------------------------------------

Money = Annotated[int, PlainSerializer(format_cents, return_type=str)]
Timestamp = Annotated[
    datetime,
    PlainSerializer(format_timestamp, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2025-01-31T12:00:00.000Z"]}),
]
T = TypeVar("T")


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CustomerOut(ResponseModel):
    id: int
    name: str
    email: str
    phone: str
    site: str | None
    status: CustomerStatus
    created_at: Timestamp


class BalanceOut(ResponseModel):
    customer_id: int
    balance: Money = Field(validation_alias="balance_cents")
    currency: Literal["USD"] = "USD"
    updated_at: Timestamp


class PackageOut(ResponseModel):
    id: int
    name: str
    price: Money = Field(validation_alias="price_cents")
    currency: str
    data_quota_mb: int | None
    time_quota_minutes: int | None
    validity_hours: int
    site: str | None
    active: bool
    created_at: Timestamp


class VoucherOut(ResponseModel):
    id: int
    code: str
    package_id: int
    customer_id: int | None
    status: VoucherStatus
    expires_at: Timestamp
    created_at: Timestamp
    sold_at: Timestamp | None
    redeemed_at: Timestamp | None


class PaymentOut(ResponseModel):
    id: int
    customer_id: int
    voucher_id: int | None
    purpose: PaymentPurpose
    amount: Money = Field(validation_alias="amount_cents")
    method: PaymentMethod
    status: PaymentStatus
    idempotency_key: str | None
    reference: str | None
    failure_reason: str | None
    invoice_id: int | None
    created_at: Timestamp
    completed_at: Timestamp | None


class InvoiceOut(ResponseModel):
    id: int
    number: str
    customer_id: int
    payment_id: int
    amount: Money = Field(validation_alias="amount_cents")
    description: str
    status: Literal["paid"]
    issued_at: Timestamp


class TransactionOut(ResponseModel):
    id: int
    customer_id: int
    payment_id: int
    kind: Literal["credit", "debit"]
    amount: Money = Field(validation_alias="amount_cents", description="Signed: credits > 0, debits < 0.")
    balance_after: Money = Field(validation_alias="balance_after_cents")
    description: str
    created_at: Timestamp


class RouterOut(ResponseModel):
    id: int
    name: str
    ip: str
    site: str
    status: RouterStatus
    active_sessions: int
    created_at: Timestamp


class SessionOut(ResponseModel):
    id: int
    customer_id: int
    voucher_id: int
    router_id: int
    status: SessionStatus
    started_at: Timestamp
    expires_at: Timestamp
    ended_at: Timestamp | None
    data_quota_mb: int | None
    time_quota_minutes: int | None
    data_used_mb: int


class Page(BaseModel, Generic[T]):
    """A list answer: ``{"data": [...]}``, oldest first."""

    data: list[T]


class TotalActive(BaseModel):
    total: int
    active: int


class VoucherFigures(BaseModel):
    total: int
    unused: int
    sold: int
    redeemed: int
    expired: int


class PaymentFigures(BaseModel):
    total: int
    pending: int
    completed: int
    failed: int


class RouterFigures(BaseModel):
    total: int
    online: int


class BalanceFigures(BaseModel):
    total: Money


class DashboardOut(BaseModel):
    site: str | None
    generated_at: Timestamp
    customers: TotalActive
    packages: TotalActive
    vouchers: VoucherFigures
    payments: PaymentFigures
    sessions: TotalActive
    routers: RouterFigures
    revenue: Money
    balances: BalanceFigures


class HealthOut(BaseModel):
    status: Literal["ok"]
    database: Literal["sqlite", "postgresql"]


class ErrorDetail(BaseModel):
    status: int
    code: Literal["unauthorized", "validation_error", "not_found", "conflict", "internal_error"]
    field: str | None
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail
