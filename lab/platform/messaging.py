"""SMS through the gateway's HTTP API, delivery receipts, templates, campaigns and SMS analytics.

Sending: the message row is committed (``queued``) *before* ``/send``, because the gateway may call the DLR
URL (which names the row) before ``/send`` has answered; when the gateway refuses, the row is deleted again
(an API request) or kept as ``failed`` (a campaign recipient). Receipts: level 1 ``ESME_ROK`` → ``accepted``
(another status → ``failed``); level 2 ``DELIVRD`` → ``delivered``, any other state → ``failed``. The first
final state wins; it fires the account's ``sms.delivered`` / ``sms.failed`` webhooks.
"""

from __future__ import annotations

import csv
import hmac
import io
import json
import logging
import math
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from lab.platform.context import Platform
from lab.platform.errors import (
    ApiError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    RateLimitedError,
    UpstreamError,
)
from lab.platform.models import (
    FINAL_SMS_STATUSES,
    Account,
    Campaign,
    CampaignRecipient,
    SmsMessage,
    Template,
    utcnow,
)
from lab.platform.schemas import (
    MAX_TEXT,
    CampaignCreate,
    CampaignOut,
    ContactIn,
    ContactsUploaded,
    Latency,
    Progress,
    RecipientOut,
    Rendered,
    SmsAnalytics,
    SmsCreate,
    SmsOut,
    TemplateCreate,
    TemplateOut,
    TemplateUpdate,
)
from lab.platform.sms_gateway import GatewayRefusedError, GatewayUnreachableError, pick_coding
from lab.platform.webhooks import enqueue

log = logging.getLogger("lab.platform.sms")

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
MAX_CONTACTS = 10_000
CSV_TO_COLUMNS = ("to", "phone", "msisdn", "number")
OPEN_RECIPIENT_STATUSES = ("pending", "queued", "accepted")


# --- sending ----------------------------------------------------------------------------------------------


def submit(
    platform: Platform,
    *,
    account_id: int,
    to: str,
    sender: str,
    text: str,
    coding: str,
    purpose: str,
    template_id: int | None = None,
    campaign_id: int | None = None,
    recipient_id: int | None = None,
) -> SmsMessage:
    """Hand one message to the gateway; return its row. A refusal raises (API, onboarding) or marks it failed."""
    sms_id = str(uuid.uuid4())
    keep_failed = purpose == "campaign"
    with platform.sessions() as session:
        session.add(
            SmsMessage(
                id=sms_id,
                account_id=account_id,
                to=to,
                sender=sender,
                text=text,
                coding=coding,
                status="queued",
                purpose=purpose,
                template_id=template_id,
                campaign_id=campaign_id,
                recipient_id=recipient_id,
            )
        )
        session.commit()
    submitted = utcnow()
    try:
        gateway_id = platform.gateway.send(to, sender, text, coding, platform.dlr_url(sms_id))
    except (GatewayRefusedError, GatewayUnreachableError) as failure:
        error = _gateway_error(platform, to, failure)
        with platform.sessions() as session:
            if keep_failed:
                session.execute(
                    update(SmsMessage)
                    .where(SmsMessage.id == sms_id)
                    .values(status="failed", error=error.message[:300], done_at=utcnow())
                )
                session.commit()
                row = session.get(SmsMessage, sms_id)
                assert row is not None
                return row
            session.execute(delete(SmsMessage).where(SmsMessage.id == sms_id))
            session.commit()
        raise error from None
    with platform.sessions() as session:
        session.execute(
            update(SmsMessage).where(SmsMessage.id == sms_id).values(gateway_id=gateway_id, sent_at=submitted)
        )
        session.commit()
        row = session.get(SmsMessage, sms_id)
        assert row is not None
        log.info("SMS %s to %s accepted by the gateway as %s", sms_id, to, gateway_id)
        return row


def _gateway_error(platform: Platform, to: str, failure: Exception) -> ApiError:
    if isinstance(failure, GatewayUnreachableError):
        return UpstreamError("sms_gateway", str(failure))
    assert isinstance(failure, GatewayRefusedError)
    if failure.status == 412:
        return InvalidError("to", f"the SMS gateway has no route to '{to}' (HTTP 412: {failure.message})")
    if failure.status == 403 and "throughput" in failure.message.lower():
        return RateLimitedError(None, f"the SMS gateway refused the platform's throughput: {failure.message}")
    return UpstreamError("sms_gateway", f"the SMS gateway at {platform.gateway.url} refused the message: {failure}")


def send_sms(platform: Platform, account: Account, session: Session, body: SmsCreate) -> SmsOut:
    """``POST /sms``: resolve the text (or template), check the coding, submit. ``session`` holds the account."""
    text, template_id = resolve_text(session, account.id, body.text, body.template_id, body.variables)
    coding = _coding(text, body.coding, "text" if template_id is None else "template_id")
    session.commit()  # the account, when this is its first change
    row = submit(
        platform,
        account_id=account.id,
        to=body.to,
        sender=body.sender,
        text=text,
        coding=coding,
        purpose="api",
        template_id=template_id,
    )
    return sms_out(row)


def resolve_text(
    session: Session,
    account_id: int,
    text: str | None,
    template_id: int | None,
    variables: Mapping[str, Any] | None,
) -> tuple[str, int | None]:
    if text is None and template_id is None:
        raise InvalidError("text", "text is required (or template_id with variables)")
    if text is not None and template_id is not None:
        raise InvalidError("template_id", "give text or template_id, not both")
    if template_id is None:
        if variables:
            raise InvalidError("variables", "variables are only used with template_id")
        assert text is not None
        return text, None
    template = _template(session, account_id, template_id)
    return render(template.body, variables or {}), template.id


def _coding(text: str, wanted: str, field: str) -> str:
    try:
        return pick_coding(text, wanted)
    except ValueError as error:
        raise InvalidError(field, f"{field} {error}") from None


def get_sms(platform: Platform, account_id: int, sms_id: str) -> SmsOut:
    with platform.sessions() as session:
        row = session.scalars(
            select(SmsMessage).where(SmsMessage.id == sms_id, SmsMessage.account_id == account_id)
        ).first()
        if row is None:
            raise NotFoundError("sms_id", f"sms_id '{sms_id}' names no message of this account")
        return sms_out(row)


def list_sms(platform: Platform, account_id: int, status: str | None, limit: int) -> list[SmsOut]:
    with platform.sessions() as session:
        query = select(SmsMessage).where(SmsMessage.account_id == account_id)
        if status:
            query = query.where(SmsMessage.status == status)
        rows = session.scalars(query.order_by(SmsMessage.created_at.desc()).limit(limit)).all()
        return [sms_out(row) for row in reversed(rows)]


def sms_out(row: SmsMessage) -> SmsOut:
    return SmsOut.model_validate(
        {
            "id": row.id,
            "to": row.to,
            "from": row.sender,
            "text": row.text,
            "coding": row.coding,
            "status": row.status,
            "gateway_message_id": row.gateway_id,
            "gateway_status": row.gateway_status,
            "error": row.error,
            "template_id": row.template_id,
            "campaign_id": row.campaign_id,
            "created_at": row.created_at,
            "sent_at": row.sent_at,
            "accepted_at": row.accepted_at,
            "done_at": row.done_at,
        }
    )


# --- delivery receipts ------------------------------------------------------------------------------------


def receive_dlr(platform: Platform, sms_id: str, token: str | None, form: Mapping[str, str]) -> str:
    """A Jasmin-style DLR callback for message ``sms_id``; returns the new status."""
    if not token or not hmac.compare_digest(token, platform.token("dlr", sms_id)[:32]):
        raise ForbiddenError("token", "the DLR callback's token does not match the message")
    level = str(form.get("level", ""))
    status = str(form.get("message_status", "")).strip()
    if level not in ("1", "2"):
        raise InvalidError("level", f"level must be 1 or 2, got '{level}'")
    if not status:
        raise InvalidError("message_status", "message_status is required")
    with platform.sessions() as session:
        sms = session.get(SmsMessage, sms_id)
        if sms is None:
            raise NotFoundError("sms_id", f"sms_id '{sms_id}' names no message")
        if sms.status in FINAL_SMS_STATUSES:
            return sms.status  # a late or repeated receipt changes nothing
        now = utcnow()
        if not sms.gateway_id and form.get("id"):
            sms.gateway_id = str(form["id"])[:64]
        sms.gateway_status = status[:32]
        if level == "1":
            if status == "ESME_ROK":
                sms.status = "accepted"
                sms.accepted_at = now
            else:
                sms.status = "failed"
                sms.error = f"the carrier refused the message: {status}"
        elif status == "DELIVRD":
            sms.status = "delivered"
        else:
            sms.status = "failed"
            sms.error = f"not delivered: {status} (err {form.get('err', '')})"
        if sms.status in FINAL_SMS_STATUSES:
            sms.done_at = now
        _recipient_follows(session, sms)
        if sms.status in FINAL_SMS_STATUSES:
            account = session.get(Account, sms.account_id)
            if account is not None:
                enqueue(session, account, f"sms.{sms.status}", sms_out(sms).model_dump(mode="json", by_alias=True))
        session.commit()
        result = sms.status
    platform.webhook_wakeup.set()
    log.info("DLR level %s for %s: %s -> %s", level, sms_id, status, result)
    return result


def _recipient_follows(session: Session, sms: SmsMessage) -> None:
    if sms.recipient_id is None:
        return
    recipient = session.get(CampaignRecipient, sms.recipient_id)
    if recipient is None:
        return
    recipient.status = sms.status
    recipient.error = sms.error
    recipient.updated_at = utcnow()
    session.flush()
    campaign = session.get(Campaign, recipient.campaign_id)
    if campaign is not None:
        maybe_complete(session, campaign)


# --- templates --------------------------------------------------------------------------------------------


def placeholders(body: str) -> list[str]:
    """The variable names of ``body`` in order of first use."""
    return list(dict.fromkeys(PLACEHOLDER.findall(body)))


def check_template_body(body: str) -> None:
    leftover = PLACEHOLDER.sub("", body)
    for marker in ("{{", "}}"):
        if marker in leftover:
            raise InvalidError(
                "body",
                f"body has a '{marker}' that is not part of a placeholder like {{{{name}}}} "
                "(letters, digits and '_', starting with a letter or '_')",
            )


def render(body: str, variables: Mapping[str, Any]) -> str:
    """``body`` with every ``{{name}}`` replaced; a missing variable is a 422 naming ``variables.<name>``."""
    for name in placeholders(body):
        if name not in variables or variables[name] in (None, ""):
            raise InvalidError(f"variables.{name}", f"variables.{name} is required by the template")
    text = PLACEHOLDER.sub(lambda match: str(variables[match.group(1)]), body)
    if len(text) > MAX_TEXT:
        raise InvalidError("variables", f"the rendered text has {len(text)} characters; at most {MAX_TEXT}")
    return text


def create_template(platform: Platform, account: Account, session: Session, body: TemplateCreate) -> TemplateOut:
    check_template_body(body.body)
    _template_name_free(session, account.id, body.name, None)
    template = Template(account_id=account.id, name=body.name, body=body.body)
    session.add(template)
    session.commit()
    return template_out(template)


def list_templates(platform: Platform, account_id: int) -> list[TemplateOut]:
    with platform.sessions() as session:
        rows = session.scalars(select(Template).where(Template.account_id == account_id).order_by(Template.id)).all()
        return [template_out(row) for row in rows]


def get_template(platform: Platform, account_id: int, template_id: int) -> TemplateOut:
    with platform.sessions() as session:
        return template_out(_template(session, account_id, template_id))


def update_template(platform: Platform, account_id: int, template_id: int, body: TemplateUpdate) -> TemplateOut:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if not changes:
        raise InvalidError("body", "give at least one of name, body")
    with platform.sessions() as session:
        template = _template(session, account_id, template_id)
        if "body" in changes:
            check_template_body(changes["body"])
        if "name" in changes:
            _template_name_free(session, account_id, changes["name"], template.id)
        for name, value in changes.items():
            setattr(template, name, value)
        template.updated_at = utcnow()
        session.commit()
        return template_out(template)


def delete_template(platform: Platform, account_id: int, template_id: int) -> None:
    with platform.sessions() as session:
        template = _template(session, account_id, template_id)
        using = session.scalars(
            select(Campaign.id).where(Campaign.template_id == template.id, Campaign.status.in_(("draft", "running")))
        ).first()
        if using is not None:
            raise ConflictError("template_id", f"template {template_id} is used by campaign {using}; finish it first")
        session.execute(update(Campaign).where(Campaign.template_id == template.id).values(template_id=None))
        session.delete(template)
        session.commit()


def render_template(platform: Platform, account_id: int, template_id: int, variables: Mapping[str, Any]) -> Rendered:
    with platform.sessions() as session:
        template = _template(session, account_id, template_id)
        text = render(template.body, variables)
        return Rendered(
            template_id=template.id, text=text, coding="gsm7" if pick_coding(text, "auto") == "gsm7" else "ucs2"
        )


def _template(session: Session, account_id: int, template_id: int) -> Template:
    row = session.scalars(select(Template).where(Template.id == template_id, Template.account_id == account_id)).first()
    if row is None:
        raise NotFoundError("template_id", f"template_id {template_id} names no template of this account")
    return row


def _template_name_free(session: Session, account_id: int, name: str, own_id: int | None) -> None:
    other = session.scalars(select(Template.id).where(Template.account_id == account_id, Template.name == name)).first()
    if other is not None and other != own_id:
        raise ConflictError("name", f"name '{name}' is taken by template {other}")


def template_out(row: Template) -> TemplateOut:
    return TemplateOut(
        id=row.id,
        name=row.name,
        body=row.body,
        variables=placeholders(row.body),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# --- campaigns --------------------------------------------------------------------------------------------


def create_campaign(platform: Platform, account: Account, session: Session, body: CampaignCreate) -> CampaignOut:
    if body.text is None and body.template_id is None:
        raise InvalidError("text", "text is required (or template_id)")
    if body.text is not None and body.template_id is not None:
        raise InvalidError("template_id", "give text or template_id, not both")
    if body.template_id is not None:
        _template(session, account.id, body.template_id)
    if body.text is not None:
        _coding(body.text, body.coding, "text")
    campaign = Campaign(
        account_id=account.id,
        name=body.name,
        sender=body.sender,
        text=body.text,
        template_id=body.template_id,
        coding=body.coding,
        rate_per_second=body.rate_per_second,
    )
    session.add(campaign)
    session.commit()
    return campaign_out(session, campaign)


def list_campaigns(platform: Platform, account_id: int) -> list[CampaignOut]:
    with platform.sessions() as session:
        rows = session.scalars(select(Campaign).where(Campaign.account_id == account_id).order_by(Campaign.id)).all()
        return [campaign_out(session, row) for row in rows]


def get_campaign(platform: Platform, account_id: int, campaign_id: int) -> CampaignOut:
    with platform.sessions() as session:
        return campaign_out(session, _campaign(session, account_id, campaign_id))


def parse_contacts(content_type: str, raw: bytes) -> list[dict[str, Any]]:
    """The contact list of an upload: a JSON array of ``{"to", "variables"}`` or CSV with a ``to`` column."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        return _csv_contacts(raw)
    try:
        data = json.loads(raw or b"null")
    except ValueError as error:
        raise BadRequestError("body", f"body is not valid JSON ({error})") from None
    if isinstance(data, dict) and "contacts" in data:
        data = data["contacts"]
    if not isinstance(data, list):
        raise InvalidError(
            "contacts",
            'must be a JSON array of {"to": ..., "variables": {...}} or a text/csv body with a \'to\' column',
        )
    return [item if isinstance(item, dict) else {"to": item} for item in data]


def _csv_contacts(raw: bytes) -> list[dict[str, Any]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequestError("body", "the CSV body is not UTF-8") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [name.strip() for name in reader.fieldnames or []]
    to_column = next((name for name in CSV_TO_COLUMNS if name in columns), None)
    if to_column is None:
        raise InvalidError("contacts", f"the CSV header needs a 'to' column; it has {columns or 'no header'}")
    contacts = []
    for row in reader:
        values = {str(key).strip(): (value or "").strip() for key, value in row.items() if key is not None}
        variables = {key: value for key, value in values.items() if key != to_column and value}
        contacts.append({"to": values.get(to_column, ""), "variables": variables})
    return contacts


def upload_contacts(
    platform: Platform, account_id: int, campaign_id: int, items: list[dict[str, Any]]
) -> ContactsUploaded:
    with platform.sessions() as session:
        campaign = _campaign(session, account_id, campaign_id)
        if campaign.status != "draft":
            raise ConflictError(
                "status", f"campaign {campaign_id} is {campaign.status}; contacts can only be added to a draft"
            )
        if not items:
            raise InvalidError("contacts", "the contact list is empty")
        existing = set(
            session.scalars(select(CampaignRecipient.to).where(CampaignRecipient.campaign_id == campaign.id))
        )
        if len(existing) + len(items) > MAX_CONTACTS:
            raise InvalidError("contacts", f"a campaign has at most {MAX_CONTACTS} contacts")
        needed = placeholders(_template(session, account_id, campaign.template_id).body) if campaign.template_id else []
        position = len(existing)
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            contact = _contact(index, item)
            if contact.to in existing:
                raise InvalidError(
                    f"contacts.{index}.to", f"contacts.{index}.to '{contact.to}' is already in the campaign"
                )
            if contact.to in seen:
                raise InvalidError(
                    f"contacts.{index}.to", f"contacts.{index}.to '{contact.to}' repeats contacts.{seen[contact.to]}"
                )
            seen[contact.to] = index
            for name in needed:
                if contact.variables.get(name) in (None, ""):
                    raise InvalidError(
                        f"contacts.{index}.variables.{name}",
                        f"contacts.{index}.variables.{name} is required by template {campaign.template_id}",
                    )
            variables = {key: str(value) for key, value in contact.variables.items()}
            if campaign.template_id is not None:
                text = render(_template(session, account_id, campaign.template_id).body, variables)
                _coding(text, campaign.coding, f"contacts.{index}.variables")
            session.add(
                CampaignRecipient(campaign_id=campaign.id, position=position, to=contact.to, variables=variables)
            )
            position += 1
        session.commit()
        return ContactsUploaded(campaign_id=campaign.id, added=len(items), total=position)


def _contact(index: int, item: dict[str, Any]) -> ContactIn:
    try:
        return ContactIn.model_validate(item)
    except ValidationError as error:
        first = error.errors()[0]
        path = ".".join(str(part) for part in first.get("loc", ()))
        field = f"contacts.{index}" + (f".{path}" if path else "")
        kind = first.get("type", "")
        if kind == "missing":
            raise InvalidError(field, f"{field} is required") from None
        if kind == "extra_forbidden":
            raise InvalidError(field, f"{field} is not a field of a contact (use 'to' and 'variables')") from None
        message = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
        message = message.replace("Input should be", "must be").replace("String should", "must")
        raise InvalidError(field, f"{field} {message}, got {first.get('input')!r}") from None


def start_campaign(platform: Platform, account_id: int, campaign_id: int) -> CampaignOut:
    with platform.sessions() as session:
        campaign = _campaign(session, account_id, campaign_id)
        if campaign.status != "draft":
            raise ConflictError("status", f"campaign {campaign_id} is {campaign.status}; only a draft can be started")
        total = session.scalar(
            select(func.count()).select_from(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign.id)
        )
        if not total:
            raise InvalidError("contacts", f"campaign {campaign_id} has no contacts; upload them first")
        campaign.status = "running"
        campaign.started_at = utcnow()
        session.commit()
        result = campaign_out(session, campaign)
    platform.campaign_wakeup.set()
    return result


def cancel_campaign(platform: Platform, account_id: int, campaign_id: int) -> CampaignOut:
    with platform.sessions() as session:
        campaign = _campaign(session, account_id, campaign_id)
        if campaign.status not in ("draft", "running"):
            raise ConflictError("status", f"campaign {campaign_id} is {campaign.status} already")
        session.execute(
            update(CampaignRecipient)
            .where(CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.status == "pending")
            .values(status="cancelled", updated_at=utcnow())
        )
        campaign.status = "cancelled"
        campaign.completed_at = utcnow()
        session.commit()
        return campaign_out(session, campaign)


def list_recipients(platform: Platform, account_id: int, campaign_id: int, status: str | None) -> list[RecipientOut]:
    with platform.sessions() as session:
        campaign = _campaign(session, account_id, campaign_id)
        query = select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign.id)
        if status:
            query = query.where(CampaignRecipient.status == status)
        rows = session.scalars(query.order_by(CampaignRecipient.position)).all()
        return [RecipientOut.model_validate(row, from_attributes=True) for row in rows]


def progress(session: Session, campaign_id: int) -> Progress:
    counts = dict(
        session.execute(
            select(CampaignRecipient.status, func.count())
            .where(CampaignRecipient.campaign_id == campaign_id)
            .group_by(CampaignRecipient.status)
        ).all()
    )
    sent = session.scalar(
        select(func.count())
        .select_from(CampaignRecipient)
        .join(SmsMessage, SmsMessage.id == CampaignRecipient.sms_id)
        .where(CampaignRecipient.campaign_id == campaign_id, SmsMessage.gateway_id.is_not(None))
    )
    return Progress(
        total=sum(counts.values()),
        pending=counts.get("pending", 0),
        sent=int(sent or 0),
        delivered=counts.get("delivered", 0),
        failed=counts.get("failed", 0),
        cancelled=counts.get("cancelled", 0),
    )


def maybe_complete(session: Session, campaign: Campaign) -> bool:
    """Mark a running campaign ``completed`` once no recipient waits to be sent or for a final receipt."""
    if campaign.status != "running":
        return False
    open_count = session.scalar(
        select(func.count())
        .select_from(CampaignRecipient)
        .where(CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.status.in_(OPEN_RECIPIENT_STATUSES))
    )
    if open_count:
        return False
    campaign.status = "completed"
    campaign.completed_at = utcnow()
    log.info("campaign %d completed", campaign.id)
    return True


def claim_next_recipient(platform: Platform, campaign_id: int) -> int | None:
    """Mark the campaign's next pending recipient ``queued`` (claimed for sending); its id, or None."""
    with platform.sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.status != "running":
            return None
        recipient = session.scalars(
            select(CampaignRecipient)
            .where(CampaignRecipient.campaign_id == campaign_id, CampaignRecipient.status == "pending")
            .order_by(CampaignRecipient.position)
            .limit(1)
        ).first()
        if recipient is None:
            if maybe_complete(session, campaign):
                session.commit()
            return None
        recipient.status = "queued"
        recipient.updated_at = utcnow()
        session.commit()
        return recipient.id


def send_to_recipient(platform: Platform, recipient_id: int) -> None:
    """Render and submit a claimed recipient's message; a refusal marks the recipient ``failed``."""
    with platform.sessions() as session:
        recipient = session.get(CampaignRecipient, recipient_id)
        campaign = session.get(Campaign, recipient.campaign_id) if recipient is not None else None
        if recipient is None or campaign is None:
            return
        try:
            if campaign.template_id is not None:
                text = render(_template(session, campaign.account_id, campaign.template_id).body, recipient.variables)
            else:
                text = campaign.text or ""
            coding = pick_coding(text, campaign.coding)
        except (ApiError, ValueError) as error:
            recipient.status = "failed"
            recipient.error = (error.message if isinstance(error, ApiError) else str(error))[:300]
            maybe_complete(session, campaign)
            session.commit()
            return
        account_id, to, sender, campaign_id = campaign.account_id, recipient.to, campaign.sender, campaign.id
        template_id = campaign.template_id
    row = submit(
        platform,
        account_id=account_id,
        to=to,
        sender=sender,
        text=text,
        coding=coding,
        purpose="campaign",
        template_id=template_id,
        campaign_id=campaign_id,
        recipient_id=recipient_id,
    )
    with platform.sessions() as session:
        recipient = session.get(CampaignRecipient, recipient_id)
        campaign = session.get(Campaign, campaign_id)
        sms = session.get(SmsMessage, row.id)
        if recipient is None or campaign is None or sms is None:
            return
        recipient.sms_id = sms.id
        if recipient.status in ("pending", "queued"):  # a fast DLR may have moved it on already
            recipient.status = sms.status
            recipient.error = sms.error
        recipient.updated_at = utcnow()
        session.flush()
        maybe_complete(session, campaign)
        session.commit()


def running_campaigns(platform: Platform) -> list[tuple[int, float]]:
    with platform.sessions() as session:
        return [
            (row.id, row.rate_per_second)
            for row in session.scalars(select(Campaign).where(Campaign.status == "running")).all()
        ]


def _campaign(session: Session, account_id: int, campaign_id: int) -> Campaign:
    row = session.scalars(select(Campaign).where(Campaign.id == campaign_id, Campaign.account_id == account_id)).first()
    if row is None:
        raise NotFoundError("campaign_id", f"campaign_id {campaign_id} names no campaign of this account")
    return row


def campaign_out(session: Session, row: Campaign) -> CampaignOut:
    return CampaignOut.model_validate(
        {
            "id": row.id,
            "name": row.name,
            "from": row.sender,
            "text": row.text,
            "template_id": row.template_id,
            "coding": row.coding,
            "rate_per_second": row.rate_per_second,
            "status": row.status,
            "progress": progress(session, row.id),
            "created_at": row.created_at,
            "started_at": row.started_at,
            "completed_at": row.completed_at,
        }
    )


# --- analytics --------------------------------------------------------------------------------------------


def analytics(platform: Platform, account_id: int, since: datetime | None, until: datetime | None) -> SmsAnalytics:
    """Figures over the account's messages created in ``[since, until)``."""
    if since is not None and until is not None and until <= since:
        raise InvalidError("until", "until must be later than since")
    with platform.sessions() as session:
        query = select(SmsMessage.status, SmsMessage.gateway_id, SmsMessage.sent_at, SmsMessage.done_at).where(
            SmsMessage.account_id == account_id
        )
        if since is not None:
            query = query.where(SmsMessage.created_at >= since)
        if until is not None:
            query = query.where(SmsMessage.created_at < until)
        rows = session.execute(query).all()
    sent = sum(1 for row in rows if row.gateway_id)
    delivered = sum(1 for row in rows if row.status == "delivered")
    failed = sum(1 for row in rows if row.status == "failed")
    pending = sum(1 for row in rows if row.gateway_id and row.status in ("queued", "accepted"))
    latencies = sorted(
        max(0.0, (row.done_at - row.sent_at).total_seconds() * 1000)
        for row in rows
        if row.status == "delivered" and row.sent_at is not None and row.done_at is not None
    )
    return SmsAnalytics(
        since=since,
        until=until,
        sent=sent,
        delivered=delivered,
        failed=failed,
        pending=pending,
        delivery_rate=round(delivered / sent, 4) if sent else 0.0,
        latency_ms=Latency(p50=_percentile(latencies, 50), p95=_percentile(latencies, 95), samples=len(latencies)),
    )


def _percentile(values: list[float], percent: float) -> float | None:
    """Nearest rank: the smallest value with at least ``percent`` % of the values at or below it."""
    if not values:
        return None
    rank = max(1, math.ceil(percent / 100 * len(values)))
    return round(values[rank - 1], 1)
