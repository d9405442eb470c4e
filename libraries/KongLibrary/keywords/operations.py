"""Keywords about the library's own calls and test data: tags, teardown, expected refusals, timings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from robot.api import logger
from robot.libraries.BuiltIn import BuiltIn
from robotlibcore import keyword

from KongLibrary.context import segment
from KongLibrary.errors import KongApiError
from KongLibrary.keywords.base import KongComponent, check_tags


def _own(path: str) -> Callable[[dict[str, Any]], str]:
    return lambda entity: f"{path}/{segment(entity['id'])}"


def _credential(sub_path: str) -> Callable[[dict[str, Any]], str]:
    return lambda entity: f"/consumers/{segment(entity['consumer']['id'])}/{sub_path}/{segment(entity['id'])}"


# Deleted in this order, so nothing is still referenced when its turn comes. Credential collections may
# be missing (a plugin not installed): a 404 there counts as empty.
TEARDOWN: tuple[tuple[str, str, Callable[[dict[str, Any]], str], bool], ...] = (
    ("plugins", "/plugins", _own("/plugins"), False),
    ("routes", "/routes", _own("/routes"), False),
    ("services", "/services", _own("/services"), False),
    ("key-auths", "/key-auths", _credential("key-auth"), True),
    ("jwts", "/jwts", _credential("jwt"), True),
    ("acls", "/acls", _credential("acls"), True),
    ("basic-auths", "/basic-auths", _credential("basic-auth"), True),
    ("hmac-auths", "/hmac-auths", _credential("hmac-auth"), True),
    ("consumers", "/consumers", _own("/consumers"), False),
    ("upstreams", "/upstreams", _own("/upstreams"), False),
)


class OperationKeywords(KongComponent):
    @keyword
    def set_default_kong_tags(self, *tags: str) -> list[str]:
        """Tags every entity created from now on with ``tags`` (as well as its own); returns the previous ones.

        Give each test (or pabot worker) its own tag and remove what it made with `Delete All Entities Tagged`:

        | `Set Default Kong Tags` | robot | ${NS} |
        | [Teardown] | `Delete All Entities Tagged` | ${NS} |
        """
        previous = list(self.ctx.default_tags)
        self.ctx.default_tags = check_tags(list(tags)) or []
        tagged = ", ".join(self.ctx.default_tags) or "nothing more than their own tags"
        logger.info(f"Kong entities created from now on are tagged: {tagged}.")
        return previous

    @keyword
    def delete_all_entities_tagged(self, tag: str) -> dict[str, int]:
        """Deletes every plugin, route, service, credential, consumer and upstream tagged ``tag``; returns counts.

        A tagged service's routes go first even when untagged (Kong refuses to delete a service in use);
        targets go with their upstream, credentials and ACL groups with their consumer. Entities already
        gone are skipped, so the keyword suits a teardown that runs after a partial set-up.

        | [Teardown] | `Delete All Entities Tagged` | ${NS} |
        """
        checked = check_tags([tag])
        if not checked:
            raise ValueError("Delete All Entities Tagged needs a tag.")
        tag = checked[0]
        counts: dict[str, int] = {}
        for kind, collection, path_of, optional in TEARDOWN:
            entities = self._tagged(collection, tag, optional)
            for entity in entities:
                if kind == "services":
                    for route in self.ctx.list_all(f"/services/{segment(entity['id'])}/routes"):
                        self.ctx.admin("DELETE", f"/routes/{segment(route['id'])}", expected=(204, 200, 404))
                        counts["routes"] = counts.get("routes", 0) + 1
                self.ctx.admin("DELETE", path_of(entity), expected=(204, 200, 404))
            if entities:
                counts[kind] = counts.get(kind, 0) + len(entities)
        summary = ", ".join(f"{count} {kind}" for kind, count in counts.items()) or "nothing"
        logger.info(f"Deleted what was tagged '{tag}': {summary}.")
        return counts

    @keyword
    def kong_should_reject(self, status: int, keyword_name: str, *args: Any) -> dict[str, Any]:
        """Runs a KongLibrary keyword that the Admin API must refuse with HTTP ``status``; returns Kong's error.

        The error has ``status``, ``name`` (e.g. ``schema violation``), ``message``, ``fields`` and
        ``detail`` (the text the failure would quote). Fails when the keyword succeeds, fails before an
        answer, or gets another status.

        | ${error}= | `Kong Should Reject` | 400 | Create Route | billing | paths=${{ ['billing'] }} |
        | Should Be Equal | ${error}[fields][paths][0] | should start with: / (fixed path) or ~/ (regex path) |
        """
        self.ctx.last_error = None
        try:
            BuiltIn().run_keyword(keyword_name, *args)
        except Exception as failure:
            error = self.ctx.last_error
            if error is None:
                raise AssertionError(
                    f"'{keyword_name}' should have been rejected by Kong with HTTP {status}, "
                    f"but it failed before an answer: {failure}"
                ) from None
            return check_rejection(keyword_name, error, status)
        raise AssertionError(
            f"'{keyword_name}' should have been rejected by Kong with HTTP {status}, but it succeeded."
        )

    @keyword
    def get_kong_node_info(self) -> dict[str, Any]:
        """Returns the Admin API's root document: ``version``, ``hostname``, ``plugins`` (available, enabled)..."""
        return self.ctx.admin("GET", "/", expected=(200,))

    @keyword
    def get_kong_operation_timings(self) -> list[dict[str, Any]]:
        """Returns this test's Kong calls: ``keyword``, ``api`` (``admin`` or ``proxy``), ``method``, ``path``,
        ``status`` and ``ms``."""
        return [
            {
                "keyword": op.keyword,
                "api": op.api,
                "method": op.method,
                "path": op.path,
                "status": op.status,
                "ms": op.seconds * 1000,
            }
            for op in self.ctx.operations
        ]

    def _tagged(self, collection: str, tag: str, optional: bool) -> list[dict[str, Any]]:
        try:
            entities = self.ctx.list_all(collection, {"tags": tag})
        except KongApiError as error:
            if optional and error.status == 404:
                return []
            raise
        # Never trust the filter alone: an Admin API that ignored ``tags`` must not cost other tests their data.
        return [entity for entity in entities if tag in (entity.get("tags") or [])]


def check_rejection(keyword_name: str, error: KongApiError, status: int) -> dict[str, Any]:
    if error.status != status:
        raise AssertionError(
            f"'{keyword_name}' should have been rejected with HTTP {status} but got HTTP {error.status}: {error.detail}"
        )
    logger.info(f"Rejected as expected: HTTP {error.status} {error.name or ''}: {error.detail}")
    return error.as_dict()
