"""Request and response models of the platform API; validation messages are written for people.

The request-validation handler in ``app.py`` turns each pydantic error into ``"<field> <message>, got <value>"``
with ``field`` the dotted path of the offending value (``contacts.3.to``, ``variables.name``).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints
from pydantic_core import PydanticCustomError

from lab.billing.schemas import format_timestamp

E164_PATTERN = re.compile(r"^\+[1-9][0-9]{6,14}$")
MSISDN_PATTERN = re.compile(r"^\+?[1-9][0-9]{6,19}$")
SENDER_PATTERN = re.compile(r"^(\+?[0-9]{1,15}|[A-Za-z0-9][A-Za-z0-9 .&-]{0,10})$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
URL_PATTERN = re.compile(r"^https?://[^\s/?#]+(/[^\s]*)?$")
SIP_URI_PATTERN = re.compile(r"^sips?:[^\s<>]+$")
MAX_TEXT = 1600  # ten concatenated GSM-7 parts, a bit more

T = TypeVar("T")


def _e164(value: str) -> str:
    if not E164_PATTERN.match(value):
        raise PydanticCustomError("e164", "must be an E.164 number: '+' and 7 to 15 digits, like '+254700000001'")
    return value


def _msisdn(value: str) -> str:
    if not MSISDN_PATTERN.match(value):
        raise PydanticCustomError(
            "msisdn", "must be a phone number of 7 to 20 digits, '+' optional, like '+254700000001'"
        )
    return value if value.startswith("+") else f"+{value}"


def _sender(value: str) -> str:
    if not SENDER_PATTERN.match(value):
        raise PydanticCustomError(
            "sender", "must be a number of up to 15 digits or up to 11 letters, digits, spaces, '.', '&' or '-'"
        )
    return value


def _email(value: str) -> str:
    if len(value) > 320 or not EMAIL_PATTERN.match(value):
        raise PydanticCustomError("email", "must be an e-mail address like 'name@example.com'")
    return value.lower()


def _ip_or_network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError as error:
        raise PydanticCustomError(
            "ip", "must be an IP address or network, like '203.0.113.7' or '203.0.113.0/24'"
        ) from error


def _http_url(value: str) -> str:
    if not URL_PATTERN.match(value) or len(value) > 2000:
        raise PydanticCustomError("url", "must be an http:// or https:// URL, like 'https://example.com/hooks'")
    return value


def _sip_uri(value: str) -> str:
    if not SIP_URI_PATTERN.match(value) or len(value) > 255:
        raise PydanticCustomError("sip_uri", "must be a SIP URI, like 'sip:ivr@apps.example.com'")
    return value


def _unique(values: list[Any]) -> list[Any]:
    if len(set(values)) != len(values):
        duplicate = next(value for index, value in enumerate(values) if value in values[:index])
        raise PydanticCustomError("unique", "must not repeat {value}", {"value": repr(duplicate)})
    return values


Strip = StringConstraints(strip_whitespace=True)
E164 = Annotated[str, Strip, AfterValidator(_e164)]
Msisdn = Annotated[str, Strip, AfterValidator(_msisdn)]
Sender = Annotated[str, Strip, AfterValidator(_sender)]
Email = Annotated[str, Strip, AfterValidator(_email)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
IpOrNetwork = Annotated[str, Strip, AfterValidator(_ip_or_network)]
HttpUrl = Annotated[str, Strip, AfterValidator(_http_url)]
SipUri = Annotated[str, Strip, AfterValidator(_sip_uri)]
Prefix = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9]{1,20}$")]
SipUser = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]

CallerIdPolicy = Literal["passthrough", "fixed", "from_pool"]
TargetType = Literal["trunk", "user", "application"]
Coding = Literal["auto", "gsm7", "ucs2"]
SmsStatus = Literal["queued", "accepted", "delivered", "failed"]
CampaignStatus = Literal["draft", "running", "completed", "cancelled"]
RecipientStatus = Literal["pending", "queued", "accepted", "delivered", "failed", "cancelled"]
WebhookEvent = Literal["sms.delivered", "sms.failed", "cdr.completed", "onboarding.verified"]
Variables = dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")], str | int | float]


class RequestModel(BaseModel):
    """Request bodies: unknown fields are refused so a typo is not silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- voice ------------------------------------------------------------------------------------------------


class TrunkCreate(RequestModel):
    name: Name
    number: E164 = Field(description="The trunk's main number (E.164); presented on calls with policy 'fixed'.")
    caller_id_policy: CallerIdPolicy = "fixed"
    allowed_ips: Annotated[list[IpOrNetwork], Field(max_length=20), AfterValidator(_unique)] = []
    caller_id_pool: Annotated[list[E164], Field(max_length=50), AfterValidator(_unique)] = Field(
        default=[], description="Further numbers a 'from_pool' trunk may present (its number is always in it)."
    )


class TrunkUpdate(RequestModel):
    name: Name | None = None
    number: E164 | None = None
    caller_id_policy: CallerIdPolicy | None = None
    allowed_ips: Annotated[list[IpOrNetwork], Field(max_length=20), AfterValidator(_unique)] | None = None
    caller_id_pool: Annotated[list[E164], Field(max_length=50), AfterValidator(_unique)] | None = None


class SipCredentials(BaseModel):
    username: str
    domain: str
    password: str | None = Field(None, description="Only in the answer that created or rotated it.")


class TrunkOut(BaseModel):
    id: int
    name: str
    number: str
    caller_id_policy: CallerIdPolicy
    caller_id_pool: list[str]
    caller_id: str | None = Field(description="The number its outbound calls present now (None: passthrough).")
    allowed_ips: list[str]
    sip: SipCredentials
    created_at: Timestamp
    updated_at: Timestamp


class RoutingRuleCreate(RequestModel):
    prefix: Prefix
    target_type: TargetType
    trunk_id: Id | None = None
    user: SipUser | None = None
    uri: SipUri | None = None
    priority: Annotated[int, Field(ge=0, le=1000)] = 100


class RoutingRuleUpdate(RequestModel):
    target_type: TargetType | None = None
    trunk_id: Id | None = None
    user: SipUser | None = None
    uri: SipUri | None = None
    priority: Annotated[int, Field(ge=0, le=1000)] | None = None


class RoutingRuleOut(BaseModel):
    id: int
    prefix: str
    target_type: TargetType
    trunk_id: int | None
    user: str | None
    uri: str | None
    priority: int
    target: str = Field(description="The SIP URI the proxies route the prefix to when this rule is in force.")
    active: bool = Field(description="True when this rule is the one in force for its prefix (lowest priority).")
    created_at: Timestamp


class CallerIdCreate(RequestModel):
    trunk_id: Id | None = None
    user: SipUser | None = None
    number: E164


class CallerIdUpdate(RequestModel):
    number: E164


class CallerIdOut(BaseModel):
    id: int
    subject_type: Literal["trunk", "user"]
    subject: str
    trunk_id: int | None
    number: str
    created_at: Timestamp
    updated_at: Timestamp


class CallOut(BaseModel):
    call_id: str
    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    state: str
    start: str | None
    proxy: str | None

    model_config = ConfigDict(populate_by_name=True)


class ProxyFailure(BaseModel):
    proxy: str
    message: str


class CallList(BaseModel):
    data: list[CallOut]
    unreachable: list[ProxyFailure] = Field(description="Proxies that did not answer dlg.list (their calls missing).")


class TransferRequest(RequestModel):
    target: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)] = Field(
        description="A SIP URI, or a user or number of the platform's domain."
    )


class CallAction(BaseModel):
    call_id: str
    action: Literal["hangup", "transfer"]
    target: str | None = None
    proxy: str


class CdrOut(BaseModel):
    id: int
    call_id: str
    from_uri: str
    to_uri: str
    caller: str
    callee: str
    start_time: Timestamp
    answer_time: Timestamp | None
    end_time: Timestamp
    duration_s: float
    disposition: str
    sip_code: int
    proxy: str


# --- messaging ----------------------------------------------------------------------------------------------


class SmsCreate(RequestModel):
    to: Msisdn
    sender: Sender = Field(alias="from")
    text: Text | None = None
    template_id: Id | None = None
    variables: Variables | None = None
    coding: Coding = "auto"


class SmsOut(BaseModel):
    id: str
    to: str
    from_: str = Field(alias="from", serialization_alias="from")
    text: str
    coding: str
    status: SmsStatus
    gateway_message_id: str | None
    gateway_status: str | None
    error: str | None
    template_id: int | None
    campaign_id: int | None
    created_at: Timestamp
    sent_at: Timestamp | None
    accepted_at: Timestamp | None
    done_at: Timestamp | None

    model_config = ConfigDict(populate_by_name=True)


class TemplateCreate(RequestModel):
    name: Name
    body: Text


class TemplateUpdate(RequestModel):
    name: Name | None = None
    body: Text | None = None


class TemplateOut(BaseModel):
    id: int
    name: str
    body: str
    variables: list[str]
    created_at: Timestamp
    updated_at: Timestamp


class TemplateRender(RequestModel):
    variables: Variables = {}


class Rendered(BaseModel):
    template_id: int
    text: str
    coding: Literal["gsm7", "ucs2"]


class CampaignCreate(RequestModel):
    name: Name
    sender: Sender = Field(alias="from")
    text: Text | None = None
    template_id: Id | None = None
    coding: Coding = "auto"
    rate_per_second: Annotated[float, Field(gt=0, le=100)] = 10.0


class Progress(BaseModel):
    total: int
    pending: int = Field(description="Not handed to the gateway yet.")
    sent: int = Field(description="Accepted by the gateway (includes those delivered or failed since).")
    delivered: int
    failed: int = Field(description="Refused by the gateway or reported undelivered by the carrier.")
    cancelled: int


class CampaignOut(BaseModel):
    id: int
    name: str
    from_: str = Field(alias="from", serialization_alias="from")
    text: str | None
    template_id: int | None
    coding: str
    rate_per_second: float
    status: CampaignStatus
    progress: Progress
    created_at: Timestamp
    started_at: Timestamp | None
    completed_at: Timestamp | None

    model_config = ConfigDict(populate_by_name=True)


class ContactIn(RequestModel):
    to: Msisdn
    variables: Variables = {}


class ContactsUploaded(BaseModel):
    campaign_id: int
    added: int
    total: int


class RecipientOut(BaseModel):
    id: int
    to: str
    variables: dict[str, Any]
    status: RecipientStatus
    sms_id: str | None
    error: str | None
    updated_at: Timestamp


class Latency(BaseModel):
    p50: float | None
    p95: float | None
    samples: int


class SmsAnalytics(BaseModel):
    since: Timestamp | None
    until: Timestamp | None
    sent: int
    delivered: int
    failed: int
    pending: int
    delivery_rate: float = Field(description="delivered / sent, 0 to 1 (4 places); 0 when nothing was sent.")
    latency_ms: Latency = Field(description="Send (gateway acceptance) to final DLR of delivered messages.")


# --- accounts -----------------------------------------------------------------------------------------------


class WebhookCreate(RequestModel):
    url: HttpUrl
    events: Annotated[list[WebhookEvent], Field(min_length=1, max_length=4), AfterValidator(_unique)]
    secret: Annotated[str, StringConstraints(min_length=16, max_length=128)] | None = None
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    description: str | None
    secret: str | None = Field(None, description="Only in the answer that registered it.")
    created_at: Timestamp


class DeliveryOut(BaseModel):
    id: str
    event: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: Timestamp
    delivered_at: Timestamp | None


class OnboardingCreate(RequestModel):
    name: PersonName
    email: Email
    phone: E164


class OnboardingVerify(RequestModel):
    code: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{6}$")]


class AccountOut(BaseModel):
    username: str
    consumer_id: str | None
    status: Literal["unverified", "active"]
    name: str | None
    email: str | None
    phone: str | None
    created_at: Timestamp | None
    verified_at: Timestamp | None


class OnboardingOut(BaseModel):
    id: int
    name: str
    email: str
    phone: str
    status: Literal["pending", "verified", "locked", "superseded"]
    attempts_left: int
    sms_id: str | None
    expires_at: Timestamp
    created_at: Timestamp
    verified_at: Timestamp | None
    account: AccountOut


# --- common -------------------------------------------------------------------------------------------------


class Page(BaseModel, Generic[T]):
    """A list answer: ``{"data": [...]}``, oldest first."""

    data: list[T]


class HealthOut(BaseModel):
    status: Literal["ok"]
    database: Literal["sqlite", "postgresql"]


class ErrorDetail(BaseModel):
    status: int
    code: str
    field: str | None
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail
