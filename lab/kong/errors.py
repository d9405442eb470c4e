"""Kong's Admin API errors (``kong/db/errors.lua``): the same codes, names, messages and HTTP statuses."""

from __future__ import annotations

import json
from typing import Any

SCHEMA_VIOLATION = 2
PRIMARY_KEY_VIOLATION = 3
FOREIGN_KEY_VIOLATION = 4
UNIQUE_VIOLATION = 5
INVALID_OFFSET = 7
INVALID_SIZE = 9

NAMES = {
    SCHEMA_VIOLATION: "schema violation",
    PRIMARY_KEY_VIOLATION: "primary key violation",
    FOREIGN_KEY_VIOLATION: "foreign key violation",
    UNIQUE_VIOLATION: "unique constraint violation",
    INVALID_OFFSET: "invalid offset",
    INVALID_SIZE: "invalid size",
}
STATUS = {UNIQUE_VIOLATION: 409}


class KongError(Exception):
    """An Admin API answer other than 2xx: ``status`` and the JSON ``body`` Kong sends with it."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("message")))
        self.status = status
        self.body = body


def db_error(code: int, message: str, fields: dict[str, Any] | None = None) -> KongError:
    body: dict[str, Any] = {"code": code, "name": NAMES[code], "message": message}
    if fields is not None:
        body["fields"] = fields
    return KongError(STATUS.get(code, 400), body)


def not_found() -> KongError:
    return KongError(404, {"message": "Not found"})


def bad_request(message: str) -> KongError:
    return KongError(400, {"message": message})


def pretty(value: Any) -> str:
    """Penlight's ``pretty.write(value, "")`` as Kong uses it in messages: ``{name="foo",service={id="..."}}``."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}={pretty(value[key])}" for key in sorted(value)) + "}"
    if isinstance(value, list):
        return "{" + ",".join(pretty(item) for item in value) + "}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def schema_violation(fields: dict[str, Any]) -> KongError:
    """``{"code": 2, "name": "schema violation", "message": "schema violation (host: required field missing)"}``."""
    parts: list[str] = list(fields.get("@entity", []))
    for name in sorted(key for key in fields if key != "@entity"):
        value = fields[name]
        if isinstance(value, dict):
            for sub in sorted(value, key=str):
                parts.append(f"{name}.{sub}: {_flat(value[sub])}")
        elif isinstance(value, list):
            for index, item in enumerate(value, start=1):
                if item is not None:
                    parts.append(f"{name}.{index}: {_flat(item)}")
        else:
            parts.append(f"{name}: {value}")
    if len(parts) == 1:
        message = f"schema violation ({parts[0]})"
    else:
        message = f"{len(parts)} schema violations ({'; '.join(parts)})"
    return db_error(SCHEMA_VIOLATION, message, fields)


def _flat(value: Any) -> str:
    return value if isinstance(value, str) else pretty(value)


def unique_violation(key: dict[str, Any]) -> KongError:
    return db_error(UNIQUE_VIOLATION, f"UNIQUE violation detected on '{pretty(key)}'", key)


def primary_key_violation(entity_id: str) -> KongError:
    return db_error(
        PRIMARY_KEY_VIOLATION, f"primary key violation on key '{pretty({'id': entity_id})}'", {"id": entity_id}
    )


def foreign_key_missing(field: str, key: dict[str, Any], parent: str) -> KongError:
    message = f"the foreign key '{pretty(key)}' does not reference an existing '{parent}' entity."
    return db_error(FOREIGN_KEY_VIOLATION, message, {field: key})


def foreign_key_restricted(parent: str, child: str) -> KongError:
    message = f"an existing '{child}' entity references this '{parent}' entity"
    return db_error(FOREIGN_KEY_VIOLATION, message, {"@referenced_by": child})
