"""Which recorded requests a keyword means: path, method, JSON, form, header and body filters.

Values compare as strings (``7`` equals ``"7"``; JSON ``true`` equals ``True`` or ``true``), so numbers from
Robot variables and from JSON bodies meet on equal terms.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from WebhookLibrary.recording import WebhookRequest, mask_header_values

_MISSING = object()


@dataclass(frozen=True)
class WebhookFilter:
    """All given criteria must hold; no criteria matches every request.

    ``fields`` are looked up in the JSON body (dotted path for nested values, ``items.0.id`` for lists),
    then in the form fields, then in the query parameters.
    """

    path: str | None = None
    method: str | None = None
    json: Mapping[str, Any] = field(default_factory=dict)
    form: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, Any] = field(default_factory=dict)
    body_regex: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.body_regex is not None:
            try:
                re.compile(self.body_regex)
            except re.error as error:
                raise ValueError(
                    f"body_regex '{self.body_regex}' is not a valid regular expression: {error}."
                ) from None
        for name, value in (("json", self.json), ("form", self.form), ("headers", self.headers)):
            if not isinstance(value, Mapping):
                raise ValueError(
                    f"{name}= must be a dictionary of expected fields, e.g. &{{expected}}, but got '{value}'."
                )

    def __call__(self, request: WebhookRequest) -> bool:
        return self.matches(request)

    def matches(self, request: WebhookRequest) -> bool:
        if self.path is not None and request.path != self.path:
            return False
        if self.method is not None and request.method.upper() != self.method.upper():
            return False
        if self.body_regex is not None and not re.search(self.body_regex, request.body):
            return False
        checks = (
            *((lookup(request.json, name), expected) for name, expected in self.json.items()),
            *((request.form.get(name, _MISSING), expected) for name, expected in self.form.items()),
            *((_header(request, name), expected) for name, expected in self.headers.items()),
            *((field_value(request, name), expected) for name, expected in self.fields.items()),
        )
        return all(values_equal(actual, expected) for actual, expected in checks)

    def describe(self) -> str:
        """The criteria in words with the expected values quoted, e.g. ``method 'POST' and id='abc'``.

        Empty when there are no criteria.
        """
        parts = []
        if self.method is not None:
            parts.append(f"method '{self.method.upper()}'")
        if self.path is not None:
            parts.append(f"path '{self.path}'")
        parts += [f"JSON {name}='{value}'" for name, value in self.json.items()]
        parts += [f"form {name}='{value}'" for name, value in self.form.items()]
        parts += [f"header {name}='{_shown_header(name, value)}'" for name, value in self.headers.items()]
        parts += [f"{name}='{value}'" for name, value in self.fields.items()]
        if self.body_regex is not None:
            parts.append(f"body matching '{self.body_regex}'")
        return " and ".join(parts)


def lookup(document: Any, dotted: str) -> Any:
    """The value at a dotted path in parsed JSON (``a.b.0.c``); a key containing dots is tried whole first."""
    if isinstance(document, Mapping) and dotted in document:
        return document[dotted]
    current = document
    for part in dotted.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def field_value(request: WebhookRequest, name: str) -> Any:
    """A field from the JSON body, else the form fields, else the query parameters."""
    value = lookup(request.json, name)
    if value is _MISSING:
        value = request.form.get(name, _MISSING)
    if value is _MISSING:
        value = request.query.get(name, _MISSING)
    return value


def values_equal(actual: Any, expected: Any) -> bool:
    """Equality by string value; a repeated form field matches when any of its values does."""
    if actual is _MISSING:
        return False
    if isinstance(actual, list) and not isinstance(expected, list) and all(isinstance(a, str) for a in actual):
        return any(values_equal(item, expected) for item in actual)
    if actual == expected and type(actual) is type(expected):
        return True
    if isinstance(actual, bool) or isinstance(expected, bool):
        return as_text(actual).lower() == as_text(expected).lower()
    return as_text(actual) == as_text(expected)


def as_text(value: Any) -> str:
    """JSON-flavoured text: ``true``, ``null``, ``7``, ``1.5``; strings as they are."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _header(request: WebhookRequest, name: str) -> Any:
    value = request.header(name)
    return _MISSING if value is None else value


def _shown_header(name: str, value: Any) -> str:
    return mask_header_values({name: str(value)})[name]
