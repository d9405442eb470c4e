"""The FastAPI application: consumer auth, the contract's error bodies, and the routes of ``/api/v1``.

The routes translate HTTP to the service modules (``voice``, ``messaging``, ``accounts``) and back; the rules
live there. Every ``/api/v1`` request must carry the consumer the API gateway (Kong's ``key-auth``)
authenticated: ``X-Consumer-Username`` (or, for a consumer without a username, ``X-Consumer-ID``); Kong's
``X-Anonymous-Consumer: true`` counts as none. In the lab topology the API is only reached through the gateway,
which sets these headers itself, so a client cannot choose them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from lab.billing.db import dialect_label, make_engine, make_sessionmaker
from lab.http_errors import BlankQueryMiddleware, InternalErrorMiddleware, error_response
from lab.platform import accounts, messaging, voice
from lab.platform.accounts import Caller, account_id, ensure_account, find_account
from lab.platform.cdrs import make_cdr_engine
from lab.platform.config import PlatformConfig
from lab.platform.context import Platform
from lab.platform.errors import ApiError, UnavailableError
from lab.platform.kamailio import KamailioRpc
from lab.platform.models import (
    Account,
    Base,
    CallerId,
    Campaign,
    Onboarding,
    RoutingRule,
    SmsMessage,
    Template,
    Trunk,
    Webhook,
)
from lab.platform.schemas import (
    AccountOut,
    CallAction,
    CallerIdCreate,
    CallerIdOut,
    CallerIdUpdate,
    CallList,
    CampaignCreate,
    CampaignOut,
    CdrOut,
    ContactsUploaded,
    DeliveryOut,
    ErrorOut,
    HealthOut,
    OnboardingCreate,
    OnboardingOut,
    OnboardingVerify,
    Page,
    ProxyFailure,
    RecipientOut,
    RecipientStatus,
    Rendered,
    RoutingRuleCreate,
    RoutingRuleOut,
    RoutingRuleUpdate,
    SmsAnalytics,
    SmsCreate,
    SmsOut,
    SmsStatus,
    TemplateCreate,
    TemplateOut,
    TemplateRender,
    TemplateUpdate,
    TransferRequest,
    TrunkCreate,
    TrunkOut,
    TrunkUpdate,
    WebhookCreate,
    WebhookOut,
)
from lab.platform.sms_gateway import SmsGatewayClient
from lab.platform.webhooks import WebhookDispatcher
from lab.platform.workers import CampaignSender, CdrPoller

logger = logging.getLogger("lab.platform")

API_PREFIX = "/api/v1"
CONSUMER_HEADER = "x-consumer-username"
CONSUMER_ID_HEADER = "x-consumer-id"
ANONYMOUS_HEADER = "x-anonymous-consumer"
DESCRIPTION = """
Lab stand-in for the platform's provisioning REST API: SIP trunks, routing rules, dynamic caller ID, call
control and CDRs (pushed to / read from the SIP proxies), SMS send, templates, campaigns and analytics (through
the SMS gateway's HTTP API), webhooks, and customer onboarding.

It sits behind the API gateway: every `/api/v1` path needs the consumer the gateway authenticated, in
`X-Consumer-Username` (or `X-Consumer-ID`), and every resource belongs to that customer account. Timestamps are
ISO 8601 UTC with `Z`. Every 4xx/5xx answers `{"error": {"status", "code", "field", "message"}}`; a rejected
request writes nothing (except the counted attempt of a wrong onboarding code).
"""
TAGS = [
    {"name": "health", "description": "Liveness; no consumer needed."},
    {"name": "account", "description": "The calling customer account and its onboarding (SMS code)."},
    {"name": "trunks", "description": "SIP trunks: credentials, allowed IPs, caller-ID policy; pushed to the proxies."},
    {"name": "routing", "description": "Prefix routing rules (trunk, user or application) and dynamic caller IDs."},
    {"name": "calls", "description": "Active calls on the proxies: list, hang up, transfer; CDRs of ended calls."},
    {"name": "sms", "description": "SMS through the gateway with delivery receipts; templates; analytics."},
    {"name": "campaigns", "description": "Bulk SMS to an uploaded contact list, paced, with progress."},
    {"name": "webhooks", "description": "Event callbacks signed with HMAC-SHA256 (X-Platform-Signature)."},
    {"name": "internal", "description": "Called by platform components, not by customers."},
]
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body cannot be read (not JSON, not an object)"},
    401: {"model": ErrorOut, "description": "No consumer: not called through the gateway"},
    404: {"model": ErrorOut, "description": "An id in the path or body names nothing of this account"},
    409: {"model": ErrorOut, "description": "State or uniqueness conflict"},
    422: {"model": ErrorOut, "description": "A field's value is invalid"},
    502: {"model": ErrorOut, "description": "A SIP proxy or the SMS gateway refused or did not answer"},
}
_STATUS_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict", 422: "validation_error"}
_BODY_TYPE_ERRORS = {"model_attributes_type", "dict_type", "model_type"}


_error = error_response


# --- middleware -----------------------------------------------------------------------------------------


class ConsumerMiddleware:
    """Refuses ``/api/v1`` requests without a consumer before the body is read; puts the `Caller` in state."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
            headers = {
                name.decode("latin-1").lower(): value.decode("utf-8", "replace") for name, value in scope["headers"]
            }
            username = headers.get(CONSUMER_HEADER, "").strip()
            consumer_id = headers.get(CONSUMER_ID_HEADER, "").strip() or None
            anonymous = headers.get(ANONYMOUS_HEADER, "").strip().lower() == "true"
            if anonymous or not (username or consumer_id):
                reason = "the gateway let an anonymous consumer through" if anonymous else "no consumer named"
                response = _error(
                    401,
                    "unauthorized",
                    "x_consumer_username",
                    f"{reason}: call the platform API through the API gateway with your API key (header 'apikey'); "
                    "the gateway names the customer account in X-Consumer-Username",
                )
                await response(scope, receive, send)
                return
            scope.setdefault("state", {})["caller"] = Caller(username or str(consumer_id), consumer_id)
        await self.app(scope, receive, send)


# --- exception handlers ---------------------------------------------------------------------------------


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    try:
        return json.dumps(value, default=str)[:200]
    except (TypeError, ValueError):  # pragma: no cover - json.dumps(default=str) hardly fails
        return repr(value)[:200]


def _describe(field: str, error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    message = str(error.get("msg", "is invalid"))
    if kind == "missing":
        return f"{field} is required"
    if kind == "extra_forbidden":
        return f"{field} is not a field of this request, got {_shown(error.get('input'))}"
    for prefix, replacement in (
        ("Value error, ", ""),
        ("Input should be", "must be"),
        ("String should", "must"),
        ("Value should", "must"),
        ("List should", "must"),
        ("Dictionary should", "must"),
    ):
        if message.startswith(prefix):
            message = replacement + message[len(prefix) :]
            break
    return f"{field} {message.strip()}, got {_shown(error.get('input'))}"


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        source = parts.pop(0)
        if not parts:
            return "body" if source == "body" else str(source)
        if source == "header":
            return str(parts[0]).lower().replace("-", "_")
    # a dict key that failed its pattern comes with a "[key]" marker in pydantic's loc
    return ".".join(str(part) for part in parts if part != "[key]") or "body"


async def _validation_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if not errors:  # pragma: no cover - FastAPI always reports at least one
        return _error(422, "validation_error", "body", "request is invalid")
    first = errors[0]
    loc = tuple(first.get("loc", ()))
    kind = first.get("type", "")
    if kind == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        position = f" at character {loc[1]}" if len(loc) > 1 and isinstance(loc[1], int) else ""
        return _error(400, "bad_request", "body", f"body is not valid JSON{position} ({detail})".replace(" ()", ""))
    if loc == ("body",) and kind in _BODY_TYPE_ERRORS:
        if isinstance(first.get("input"), bytes | str):
            return _error(
                400, "bad_request", "body", "body must be a JSON object sent as Content-Type: application/json"
            )
        return _error(422, "validation_error", "body", f"body must be a JSON object, got {_shown(first.get('input'))}")
    field = _field(loc)
    return _error(422, "validation_error", field, _describe(field, first))


async def _api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _error(exc.status, exc.code, exc.field, exc.message, exc.headers)


async def _http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return _error(404, "not_found", "path", f"no endpoint at {request.url.path}")
    if exc.status_code == 405:
        return _error(405, "method_not_allowed", "method", f"{request.method} is not allowed on {request.url.path}")
    if exc.status_code == 400:
        return _error(400, "bad_request", "body", "body is not valid JSON")
    code = _STATUS_CODES.get(exc.status_code, "internal_error" if exc.status_code >= 500 else "bad_request")
    return _error(exc.status_code, code, None, str(exc.detail), dict(exc.headers or {}))


# --- dependencies ---------------------------------------------------------------------------------------


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def _db(request: Request) -> Iterator[Session]:
    with _platform(request).sessions() as session:
        yield session


def _caller(request: Request) -> Caller:
    caller: Caller = request.state.caller
    return caller


def _owner(request: Request) -> int:
    """The caller's account id, read in a session of its own that is closed again at once.

    On SQLite every transaction holds the write lock (``BEGIN IMMEDIATE``), so a request never keeps one
    session open while a service function opens another.
    """
    with _platform(request).sessions() as session:
        return account_id(session, _caller(request))


P = Annotated[Platform, Depends(_platform)]
DB = Annotated[Session, Depends(_db)]
Who = Annotated[Caller, Depends(_caller)]
Owner = Annotated[int, Depends(_owner)]
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
Since = Annotated[datetime | None, Query(description="ISO 8601; without a zone it is UTC")]
Until = Annotated[datetime | None, Query(description="ISO 8601, exclusive; without a zone it is UTC")]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _forget_new_account(platform: Platform, account_row_id: int) -> None:
    """Remove an account made by a request that then failed, when nothing else of it exists."""
    with platform.sessions() as session:
        for model in (Trunk, RoutingRule, CallerId, Webhook, Template, Campaign, Onboarding, SmsMessage):
            if session.scalars(select(model.id).where(model.account_id == account_row_id).limit(1)).first():
                return
        session.execute(delete(Account).where(Account.id == account_row_id))
        session.commit()


# --- routes ---------------------------------------------------------------------------------------------


def _build_router() -> APIRouter:
    api = APIRouter(prefix=API_PREFIX, responses=ERROR_RESPONSES)

    # account and onboarding
    @api.get("/account", tags=["account"])
    def get_account(db: DB, who: Who) -> AccountOut:
        return accounts.account_out(find_account(db, who), who)

    @api.post("/onboarding", status_code=201, tags=["account"])
    def start_onboarding(body: OnboardingCreate, platform: P, who: Who) -> OnboardingOut:
        return accounts.start_onboarding(platform, who, body)

    @api.get("/onboarding/{onboarding_id}", tags=["account"])
    def get_onboarding(onboarding_id: IdPath, platform: P, who: Who) -> OnboardingOut:
        return accounts.get_onboarding(platform, who, onboarding_id)

    @api.post("/onboarding/{onboarding_id}/verify", tags=["account"])
    def verify_onboarding(onboarding_id: IdPath, body: OnboardingVerify, platform: P, who: Who) -> OnboardingOut:
        return accounts.verify_onboarding(platform, who, onboarding_id, body.code)

    # trunks
    @api.post("/trunks", status_code=201, tags=["trunks"])
    def create_trunk(body: TrunkCreate, platform: P, db: DB, who: Who) -> TrunkOut:
        return voice.create_trunk(platform, db, ensure_account(db, who), body)

    @api.get("/trunks", tags=["trunks"])
    def list_trunks(platform: P, db: DB, who: Who) -> Page[TrunkOut]:
        return Page[TrunkOut](data=voice.list_trunks(platform, db, account_id(db, who)))

    @api.get("/trunks/{trunk_id}", tags=["trunks"])
    def get_trunk(trunk_id: IdPath, platform: P, db: DB, who: Who) -> TrunkOut:
        return voice.get_trunk(platform, db, account_id(db, who), trunk_id)

    @api.patch("/trunks/{trunk_id}", tags=["trunks"])
    def update_trunk(trunk_id: IdPath, body: TrunkUpdate, platform: P, db: DB, who: Who) -> TrunkOut:
        return voice.update_trunk(platform, db, account_id(db, who), trunk_id, body)

    @api.post("/trunks/{trunk_id}/credentials", tags=["trunks"])
    def rotate_trunk_password(trunk_id: IdPath, platform: P, db: DB, who: Who) -> TrunkOut:
        return voice.rotate_trunk_password(platform, db, account_id(db, who), trunk_id)

    @api.delete("/trunks/{trunk_id}", status_code=204, tags=["trunks"])
    def delete_trunk(trunk_id: IdPath, platform: P, db: DB, who: Who) -> Response:
        voice.delete_trunk(platform, db, account_id(db, who), trunk_id)
        return Response(status_code=204)

    # routing rules
    @api.post("/routing-rules", status_code=201, tags=["routing"])
    def create_rule(body: RoutingRuleCreate, platform: P, db: DB, who: Who) -> RoutingRuleOut:
        return voice.create_rule(platform, db, ensure_account(db, who), body)

    @api.get("/routing-rules", tags=["routing"])
    def list_rules(
        platform: P, db: DB, who: Who, prefix: Annotated[str | None, Query()] = None
    ) -> Page[RoutingRuleOut]:
        return Page[RoutingRuleOut](data=voice.list_rules(platform, db, account_id(db, who), prefix))

    @api.get("/routing-rules/{rule_id}", tags=["routing"])
    def get_rule(rule_id: IdPath, platform: P, db: DB, who: Who) -> RoutingRuleOut:
        return voice.get_rule(platform, db, account_id(db, who), rule_id)

    @api.patch("/routing-rules/{rule_id}", tags=["routing"])
    def update_rule(rule_id: IdPath, body: RoutingRuleUpdate, platform: P, db: DB, who: Who) -> RoutingRuleOut:
        return voice.update_rule(platform, db, account_id(db, who), rule_id, body)

    @api.delete("/routing-rules/{rule_id}", status_code=204, tags=["routing"])
    def delete_rule(rule_id: IdPath, platform: P, db: DB, who: Who) -> Response:
        voice.delete_rule(platform, db, account_id(db, who), rule_id)
        return Response(status_code=204)

    # dynamic caller ID
    @api.post("/caller-ids", status_code=201, tags=["routing"])
    def create_caller_id(body: CallerIdCreate, platform: P, db: DB, who: Who) -> CallerIdOut:
        return voice.create_caller_id(platform, db, ensure_account(db, who), body)

    @api.get("/caller-ids", tags=["routing"])
    def list_caller_ids(db: DB, who: Who) -> Page[CallerIdOut]:
        return Page[CallerIdOut](data=voice.list_caller_ids(db, account_id(db, who)))

    @api.get("/caller-ids/{caller_id}", tags=["routing"])
    def get_caller_id(caller_id: IdPath, db: DB, who: Who) -> CallerIdOut:
        return voice.get_caller_id(db, account_id(db, who), caller_id)

    @api.patch("/caller-ids/{caller_id}", tags=["routing"])
    def update_caller_id(caller_id: IdPath, body: CallerIdUpdate, platform: P, db: DB, who: Who) -> CallerIdOut:
        return voice.update_caller_id(platform, db, account_id(db, who), caller_id, body.number)

    @api.delete("/caller-ids/{caller_id}", status_code=204, tags=["routing"])
    def delete_caller_id(caller_id: IdPath, platform: P, db: DB, who: Who) -> Response:
        voice.delete_caller_id(platform, db, account_id(db, who), caller_id)
        return Response(status_code=204)

    # calls and CDRs
    @api.get("/calls", tags=["calls"])
    def list_calls(platform: P, owner: Owner) -> CallList:
        """The account's active calls: ``dlg.list`` on every SIP proxy over JSON-RPC, mapped to calls.

        A proxy that does not answer is named in ``unreachable`` (its calls are missing); 502 when none answers.
        """
        calls, failures = voice.list_calls(platform, owner)
        return CallList(data=calls, unreachable=[ProxyFailure(proxy=f.url, message=f.reason) for f in failures])

    @api.delete("/calls/{call_id}", status_code=202, tags=["calls"])
    def hang_up(call_id: str, platform: P, owner: Owner) -> CallAction:
        """Ends the call: ``dlg.end_dlg [h_entry, h_id]`` on the proxy holding its dialog (202: BYEs go out)."""
        return voice.hang_up(platform, owner, call_id)

    @api.post("/calls/{call_id}/transfer", status_code=202, tags=["calls"])
    def transfer(call_id: str, body: TransferRequest, platform: P, owner: Owner) -> CallAction:
        """Asks the proxy holding the call to transfer it (send a REFER): JSON-RPC ``telco.transfer
        [call_id, target]``, a lab extension. Real Kamailio has no such RPC: it needs the ``tm`` RPC
        ``tm.t_uac_start`` with an in-dialog REFER, or a route that fills ``$uac_req(...)`` and calls the ``uac``
        module's ``uac_req_send()`` (see ``lab/platform/README.md``).
        """
        return voice.transfer(platform, owner, call_id, body.target)

    @api.get("/cdrs", tags=["calls"])
    def list_cdrs(
        platform: P,
        db: DB,
        who: Who,
        call_id: Annotated[str | None, Query()] = None,
        customer: Annotated[
            str | None, Query(description="A trunk of the account (by name), or a SIP user or number: caller or callee")
        ] = None,
        caller: Annotated[str | None, Query(alias="from", description="The caller (user or number)")] = None,
        callee: Annotated[str | None, Query(alias="to", description="The callee (user or number dialled)")] = None,
        since: Since = None,
        until: Until = None,
        limit: Limit = 1000,
    ) -> Page[CdrOut]:
        """The account's CDRs from the SIP proxies' ``cdrs`` table, oldest first (``since``/``until``: start)."""
        rows = voice.query_cdrs(
            platform,
            db,
            account_id(db, who),
            call_id=call_id,
            customer=customer,
            caller=caller,
            callee=callee,
            since=_utc(since),
            until=_utc(until),
            limit=limit,
        )
        return Page[CdrOut](data=rows)

    # SMS
    @api.post("/sms", status_code=202, tags=["sms"], response_model_by_alias=True)
    def send_sms(body: SmsCreate, platform: P, db: DB, who: Who) -> SmsOut:
        """Sends through the SMS gateway's HTTP ``/send`` (dlr-level 3); 202 with the message, ``queued``.

        The gateway's receipts move it to ``accepted``, then ``delivered`` or ``failed``, and fire the account's
        ``sms.delivered`` / ``sms.failed`` webhooks. Gateway refusals: no route → 422 ``to``; throughput → 429;
        anything else, or no answer → 502 ``sms_gateway``; nothing is kept of a refused message.
        """
        created = find_account(db, who) is None
        account = ensure_account(db, who)
        new_id = account.id
        try:
            return messaging.send_sms(platform, account, db, body)
        except ApiError:
            db.rollback()  # release the database before the clean-up takes it
            if created:
                _forget_new_account(platform, new_id)
            raise

    @api.get("/sms", tags=["sms"])
    def list_sms(
        platform: P, owner: Owner, status: Annotated[SmsStatus | None, Query()] = None, limit: Limit = 100
    ) -> Page[SmsOut]:
        return Page[SmsOut](data=messaging.list_sms(platform, owner, status, limit))

    @api.get("/sms/{sms_id}", tags=["sms"])
    def get_sms(sms_id: str, platform: P, owner: Owner) -> SmsOut:
        return messaging.get_sms(platform, owner, sms_id)

    @api.get("/analytics/sms", tags=["sms"])
    def sms_analytics(platform: P, owner: Owner, since: Since = None, until: Until = None) -> SmsAnalytics:
        return messaging.analytics(platform, owner, _utc(since), _utc(until))

    # templates
    @api.post("/templates", status_code=201, tags=["sms"])
    def create_template(body: TemplateCreate, platform: P, db: DB, who: Who) -> TemplateOut:
        return messaging.create_template(platform, ensure_account(db, who), db, body)

    @api.get("/templates", tags=["sms"])
    def list_templates(platform: P, owner: Owner) -> Page[TemplateOut]:
        return Page[TemplateOut](data=messaging.list_templates(platform, owner))

    @api.get("/templates/{template_id}", tags=["sms"])
    def get_template(template_id: IdPath, platform: P, owner: Owner) -> TemplateOut:
        return messaging.get_template(platform, owner, template_id)

    @api.patch("/templates/{template_id}", tags=["sms"])
    def update_template(template_id: IdPath, body: TemplateUpdate, platform: P, owner: Owner) -> TemplateOut:
        return messaging.update_template(platform, owner, template_id, body)

    @api.delete("/templates/{template_id}", status_code=204, tags=["sms"])
    def delete_template(template_id: IdPath, platform: P, owner: Owner) -> Response:
        messaging.delete_template(platform, owner, template_id)
        return Response(status_code=204)

    @api.post("/templates/{template_id}/render", tags=["sms"])
    def render_template(template_id: IdPath, body: TemplateRender, platform: P, owner: Owner) -> Rendered:
        return messaging.render_template(platform, owner, template_id, body.variables)

    # campaigns
    @api.post("/campaigns", status_code=201, tags=["campaigns"], response_model_by_alias=True)
    def create_campaign(body: CampaignCreate, platform: P, db: DB, who: Who) -> CampaignOut:
        return messaging.create_campaign(platform, ensure_account(db, who), db, body)

    @api.get("/campaigns", tags=["campaigns"])
    def list_campaigns(platform: P, owner: Owner) -> Page[CampaignOut]:
        return Page[CampaignOut](data=messaging.list_campaigns(platform, owner))

    @api.get("/campaigns/{campaign_id}", tags=["campaigns"])
    def get_campaign(campaign_id: IdPath, platform: P, owner: Owner) -> CampaignOut:
        return messaging.get_campaign(platform, owner, campaign_id)

    @api.post(
        "/campaigns/{campaign_id}/contacts",
        status_code=201,
        tags=["campaigns"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["to"],
                                "properties": {
                                    "to": {"type": "string", "examples": ["+254700000001"]},
                                    "variables": {"type": "object", "additionalProperties": {"type": "string"}},
                                },
                            },
                        }
                    },
                    "text/csv": {
                        "schema": {"type": "string", "examples": ["to,name\n+254700000001,Ann\n"]},
                    },
                },
            }
        },
    )
    async def upload_contacts(campaign_id: IdPath, request: Request, platform: P, owner: Owner) -> ContactsUploaded:
        raw = await request.body()
        items = messaging.parse_contacts(request.headers.get("content-type", "application/json"), raw)
        return await run_in_threadpool(messaging.upload_contacts, platform, owner, campaign_id, items)

    @api.post("/campaigns/{campaign_id}/start", tags=["campaigns"])
    def start_campaign(campaign_id: IdPath, platform: P, owner: Owner) -> CampaignOut:
        return messaging.start_campaign(platform, owner, campaign_id)

    @api.post("/campaigns/{campaign_id}/cancel", tags=["campaigns"])
    def cancel_campaign(campaign_id: IdPath, platform: P, owner: Owner) -> CampaignOut:
        return messaging.cancel_campaign(platform, owner, campaign_id)

    @api.get("/campaigns/{campaign_id}/recipients", tags=["campaigns"])
    def list_recipients(
        campaign_id: IdPath, platform: P, owner: Owner, status: Annotated[RecipientStatus | None, Query()] = None
    ) -> Page[RecipientOut]:
        return Page[RecipientOut](data=messaging.list_recipients(platform, owner, campaign_id, status))

    # webhooks
    @api.post("/webhooks", status_code=201, tags=["webhooks"])
    def create_webhook(body: WebhookCreate, platform: P, who: Who) -> WebhookOut:
        return accounts.create_webhook(platform, who, body)

    @api.get("/webhooks", tags=["webhooks"])
    def list_webhooks(platform: P, who: Who) -> Page[WebhookOut]:
        return Page[WebhookOut](data=accounts.list_webhooks(platform, who))

    @api.get("/webhooks/{webhook_id}", tags=["webhooks"])
    def get_webhook(webhook_id: IdPath, platform: P, who: Who) -> WebhookOut:
        return accounts.get_webhook(platform, who, webhook_id)

    @api.delete("/webhooks/{webhook_id}", status_code=204, tags=["webhooks"])
    def delete_webhook(webhook_id: IdPath, platform: P, who: Who) -> Response:
        accounts.delete_webhook(platform, who, webhook_id)
        return Response(status_code=204)

    @api.get("/webhooks/{webhook_id}/deliveries", tags=["webhooks"])
    def list_deliveries(webhook_id: IdPath, platform: P, who: Who) -> Page[DeliveryOut]:
        return Page[DeliveryOut](data=accounts.list_deliveries(platform, who, webhook_id))

    return api


def _build_internal() -> APIRouter:
    internal = APIRouter(prefix="/internal", tags=["internal"])

    async def receive_dlr(sms_id: str, request: Request, platform: Platform) -> PlainTextResponse:
        form = {key: values[-1] for key, values in parse_qs(request.url.query, keep_blank_values=True).items()}
        token = form.pop("token", None)
        if request.method == "POST":
            raw = await request.body()
            form.update({key: values[-1] for key, values in parse_qs(raw.decode("utf-8", "replace")).items()})
        await run_in_threadpool(messaging.receive_dlr, platform, sms_id, token, form)
        return PlainTextResponse("ACK/Jasmin")

    responses: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/plain": {"example": "ACK/Jasmin"}}, "description": "Receipt taken"},
        403: {"model": ErrorOut, "description": "The token does not match the message"},
        404: {"model": ErrorOut, "description": "No such message"},
        422: {"model": ErrorOut, "description": "level or message_status missing or wrong"},
    }

    @internal.post("/dlr/{sms_id}", response_class=PlainTextResponse, responses=responses)
    async def receive_dlr_post(sms_id: str, request: Request, platform: P) -> PlainTextResponse:
        """The SMS gateway's DLR callback as a form post (Jasmin's ``id``, ``level``, ``message_status``, ...).

        ``?token=`` must be the one of the ``dlr-url`` the platform gave the gateway. Answers ``ACK/Jasmin``
        (what Jasmin's DLR thrower wants, or it sends again).
        """
        return await receive_dlr(sms_id, request, platform)

    @internal.get("/dlr/{sms_id}", response_class=PlainTextResponse, responses=responses)
    async def receive_dlr_get(sms_id: str, request: Request, platform: P) -> PlainTextResponse:
        """The same DLR callback with the fields in the query string (``dlr-method=GET``)."""
        return await receive_dlr(sms_id, request, platform)

    return internal


# --- factory --------------------------------------------------------------------------------------------


def create_app(config: PlatformConfig, *, workers: bool = True) -> FastAPI:
    """The platform app on ``config.database`` (tables made when missing); ``workers`` runs the background threads."""
    database = dialect_label(config.database)
    engine = make_engine(config.database)
    Base.metadata.create_all(engine)
    platform = Platform(
        config=config,
        engine=engine,
        sessions=make_sessionmaker(engine),
        cdr_engine=make_cdr_engine(config.cdr_database),
        rpc=KamailioRpc(config.voice_rpc, config.tuning.rpc_timeout),
        gateway=SmsGatewayClient(config.sms, config.tuning.sms_timeout),
    )
    platform.load_secret()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        running: list[WebhookDispatcher | CdrPoller | CampaignSender] = []
        if workers:
            running = [WebhookDispatcher(platform), CdrPoller(platform), CampaignSender(platform)]
            for worker in running:
                worker.start()
        try:
            yield
        finally:
            for worker in reversed(running):
                worker.stop()
            platform.close()

    app = FastAPI(
        title="telco-robot lab platform API",
        description=DESCRIPTION,
        version="1.0.0",
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.platform = platform
    app.state.database = database

    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    # Added last = outermost: the consumer check answers first; errors inside become 500 bodies.
    app.add_middleware(BlankQueryMiddleware)
    app.add_middleware(InternalErrorMiddleware, log=logger)
    app.add_middleware(ConsumerMiddleware)

    @app.get("/health", tags=["health"], responses={503: {"model": ErrorOut, "description": "Database down"}})
    def health(db: DB) -> HealthOut:
        try:
            db.execute(text("SELECT 1"))
        except Exception as error:
            logger.exception("Health check: the database does not answer")
            raise UnavailableError("database", "the database does not answer") from error
        return HealthOut(status="ok", database=database)

    app.include_router(_build_router())
    app.include_router(_build_internal())
    return app
