"""Texts about requests for logs and failure messages: one line per request, cut and with secrets masked."""

from __future__ import annotations

import json
from collections.abc import Sequence

from WebhookLibrary.recording import WebhookRequest, mask_header_values

MAX_LISTED = 18  # with the heading and the "more" line, a listing stays within 20 lines
LINE_LIMIT = 200
BODY_LOG_LIMIT = 2000


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def one_line(request: WebhookRequest) -> str:
    """``#3 12:00:01.123 POST /dlr -> 200 form: id='abc', message_status='DELIVRD'``."""
    target = request.path + (f"?{_fields(request.query)}" if request.query and request.method != "GET" else "")
    time = request.received.strftime("%H:%M:%S.%f")[:-3]
    head = f"#{request.number} {time} {request.method} {target} -> {request.response_status}"
    if request.json is not None:
        content = "json: " + json.dumps(request.json, ensure_ascii=False, separators=(",", ":"))
    elif request.form:
        content = "form: " + ", ".join(f"{name}='{value}'" for name, value in request.form.items())
    elif request.body:
        content = "body: " + request.body.replace("\n", " ")
    else:
        content = "no body"
    return cut(f"{head} {content}", LINE_LIMIT)


def _fields(fields: dict[str, str | list[str]]) -> str:
    return "&".join(f"{name}={value}" for name, value in fields.items())


def listing(arrivals: Sequence[tuple[WebhookRequest, bool]], rejected: Sequence[str] = ()) -> str:
    """What did arrive, at most 20 lines: requests (consumed ones marked) and requests answered 404."""
    if not arrivals and not rejected:
        return "No request arrived."
    lines = [f"{len(arrivals)} request{'s' if len(arrivals) != 1 else ''} arrived:"]
    shown = arrivals[-MAX_LISTED:]
    if len(arrivals) > len(shown):
        lines.append(f"  ... {len(arrivals) - len(shown)} earlier not shown (see `Get Webhook Requests`)")
    lines += [f"  {one_line(r)}{' [already returned by a wait]' if used else ''}" for r, used in shown]
    if rejected:
        lines.append(cut(f"{len(rejected)} outside the base path, answered 404: {', '.join(rejected)}", LINE_LIMIT))
    return "\n".join(lines)


def details(request: WebhookRequest) -> str:
    """The request for a DEBUG log: request line, masked headers and the body cut to 2000 characters."""
    headers = "\n".join(f"{name}: {value}" for name, value in mask_header_values(request.headers).items())
    return f"{request.method} {request.path} from {request.client}\n{headers}\n\n{cut(request.body, BODY_LOG_LIMIT)}"
