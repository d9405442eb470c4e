"""What a receiver records: one immutable ``WebhookRequest`` per HTTP request, kept in a thread-safe store.

The HTTP server threads only call ``RequestStore.add`` (and ``note_rejected`` / ``note_error``); everything
that reads, matches, logs or consumes runs in the keyword thread.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import Message
from typing import Any
from urllib.parse import parse_qs

from robot.utils import DotDict
from telco_common.masking import MASK, masked_headers

_EXTRA_SECRET_HEADER = re.compile(r"api[-_]?key|token|secret|signature|cookie|password", re.IGNORECASE)


def mask_header_values(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers with credentials (``Authorization``, API keys, tokens, cookies, signatures) shown as ``***``."""
    masked = masked_headers(headers)
    return {name: (MASK if _EXTRA_SECRET_HEADER.search(name) else value) for name, value in masked.items()}


def parse_fields(text: str) -> dict[str, str | list[str]]:
    """Form or query fields; a field given once is a string, a repeated field a list of strings."""
    parsed = parse_qs(text, keep_blank_values=True)
    return {name: values[0] if len(values) == 1 else values for name, values in parsed.items()}


@dataclass(frozen=True)
class WebhookRequest:
    """One HTTP request as the receiver saw it. ``number`` is its 1-based arrival order in its receiver."""

    receiver: str
    method: str
    path: str
    query: dict[str, str | list[str]]
    headers: dict[str, str]
    raw_body: bytes
    body: str
    json: Any
    form: dict[str, str | list[str]]
    received: datetime
    client: str
    response_status: int
    number: int = 0

    @classmethod
    def parse(
        cls,
        *,
        receiver: str,
        method: str,
        target: str,
        headers: Message,
        raw_body: bytes,
        client: str,
        response_status: int,
    ) -> WebhookRequest:
        """Build a record from the request line, headers and body; JSON and form bodies are parsed."""
        path, _, query_string = target.partition("?")
        query = parse_fields(query_string)
        content_type = headers.get_content_type()
        body = _decode(raw_body, headers.get_content_charset())
        parsed_json = _parse_json(body, content_type)
        if content_type == "application/x-www-form-urlencoded" or (
            headers.get("Content-Type") is None and parsed_json is None and _looks_like_form(body)
        ):
            form = parse_fields(body)
        elif method == "GET":
            form = dict(query)
        else:
            form = {}
        return cls(
            receiver=receiver,
            method=method,
            path=path,
            query=query,
            headers={name: str(value) for name, value in headers.items()},
            raw_body=raw_body,
            body=body,
            json=parsed_json,
            form=form,
            received=datetime.now().astimezone(),
            client=client,
            response_status=response_status,
        )

    def header(self, name: str) -> str | None:
        """A header's real (unmasked) value, the name matched case-insensitively."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)

    def to_dict(self) -> DotDict:
        """The record as Robot sees it (``${request.form.id}`` works); credential headers are masked."""
        return DotDict(
            receiver=self.receiver,
            number=self.number,
            method=self.method,
            path=self.path,
            query=self.query,
            headers=mask_header_values(self.headers),
            body=self.body,
            raw_body=self.raw_body,
            json=self.json,
            form=self.form,
            received=self.received.isoformat(timespec="milliseconds"),
            client=self.client,
            response_status=self.response_status,
        )


def _decode(raw_body: bytes, charset: str | None) -> str:
    try:
        return raw_body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return raw_body.decode("utf-8", errors="replace")


def _looks_like_form(body: str) -> bool:
    """A body sent without a Content-Type is read as form fields when it parses strictly as them."""
    try:
        return bool(body) and bool(parse_qs(body, keep_blank_values=True, strict_parsing=True))
    except ValueError:
        return False


def _parse_json(body: str, content_type: str) -> Any:
    looks_like_json = body.lstrip()[:1] in ("{", "[")
    if not (content_type.endswith("json") or content_type.endswith("+json") or looks_like_json):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


@dataclass
class RequestStore:
    """Requests in arrival order, safe to fill from many server threads while the keyword thread reads.

    A request is *consumed* once `Wait Until Webhook Received` has returned it, so the next wait with the
    same filters returns the next matching request.
    """

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _requests: list[WebhookRequest] = field(default_factory=list)
    _consumed: set[int] = field(default_factory=set)
    _rejected: list[str] = field(default_factory=list)
    _errors: list[str] = field(default_factory=list)

    def add(self, request: WebhookRequest) -> None:
        with self._lock:
            self._requests.append(replace(request, number=next(self._numbers)))

    def note_rejected(self, description: str) -> None:
        """A request answered 404 because it was outside the receiver's base path (not recorded)."""
        with self._lock:
            self._rejected.append(description)

    def note_error(self, description: str) -> None:
        """An exception in a server thread, kept for the keyword thread to report."""
        with self._lock:
            self._errors.append(description)

    def snapshot(self) -> list[tuple[WebhookRequest, bool]]:
        """Every recorded request with whether it was already consumed."""
        with self._lock:
            return [(request, request.number in self._consumed) for request in self._requests]

    def requests(self) -> list[WebhookRequest]:
        with self._lock:
            return list(self._requests)

    def rejected(self) -> list[str]:
        with self._lock:
            return list(self._rejected)

    def take_errors(self) -> list[str]:
        with self._lock:
            errors, self._errors = self._errors, []
            return errors

    def first_unconsumed(self, predicate: Callable[[WebhookRequest], bool]) -> WebhookRequest | None:
        with self._lock:
            return next((r for r in self._requests if r.number not in self._consumed and predicate(r)), None)

    def consume_first(self, predicate: Callable[[WebhookRequest], bool]) -> WebhookRequest | None:
        """The earliest matching request not consumed yet, marked consumed; ``None`` if there is none."""
        with self._lock:
            for request in self._requests:
                if request.number not in self._consumed and predicate(request):
                    self._consumed.add(request.number)
                    return request
            return None

    def count(self, predicate: Callable[[WebhookRequest], bool]) -> int:
        with self._lock:
            return sum(1 for request in self._requests if predicate(request))

    def clear(self) -> int:
        """Forget every request (numbering continues); returns how many were forgotten."""
        with self._lock:
            cleared = len(self._requests)
            self._requests.clear()
            self._consumed.clear()
            self._rejected.clear()
            return cleared
