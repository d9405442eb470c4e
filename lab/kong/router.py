"""Kong's route matching for HTTP (``traditional_compatible`` flavour, simplified).

A route matches when every attribute it sets matches: ``methods``, ``hosts`` (exact, ``*.`` prefix or ``.*``
suffix wildcards), ``headers`` and ``paths`` (prefix match, or a regex when the path starts with ``~``). Among the
matching routes the one that sets more attributes wins, then exact hosts over wildcards, then regex paths by
``regex_priority``, then the longest matching path, then the older route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lab.kong.schema import ROUTE_DEFAULTS, kong_regex, with_defaults


@dataclass(frozen=True)
class CompiledRoute:
    route: dict[str, Any]
    seq: int
    methods: frozenset[str]
    plain_hosts: frozenset[str]
    wildcard_hosts: tuple[re.Pattern[str], ...]
    headers: tuple[tuple[str, frozenset[str]], ...]
    prefixes: tuple[str, ...]
    regexes: tuple[re.Pattern[str], ...]
    weight: int

    @property
    def service_id(self) -> str | None:
        service = self.route.get("service")
        return str(service["id"]) if isinstance(service, dict) and service.get("id") else None


@dataclass(frozen=True)
class Match:
    route: CompiledRoute
    matched_path: str  # the part of the request path the route's path matched ("" when the route has no paths)
    is_regex: bool


def compile_route(route: dict[str, Any], seq: int) -> CompiledRoute:
    effective = with_defaults(ROUTE_DEFAULTS, route)
    hosts = [str(host).lower() for host in effective.get("hosts") or []]
    plain = frozenset(host for host in hosts if "*" not in host)
    wildcards = tuple(re.compile("^" + re.escape(host).replace(r"\*", r"[^.]+") + "$") for host in hosts if "*" in host)
    headers = tuple(
        (str(name).lower(), frozenset(str(value).lower() for value in (values or [])))
        for name, values in (effective.get("headers") or {}).items()
    )
    paths = [str(path) for path in effective.get("paths") or []]
    prefixes = tuple(path for path in paths if not path.startswith("~"))
    regexes = tuple(re.compile(kong_regex(path[1:])) for path in paths if path.startswith("~"))
    weight = sum(bool(effective.get(name)) for name in ("methods", "hosts", "headers", "paths", "snis"))
    return CompiledRoute(
        route=effective,
        seq=seq,
        methods=frozenset(str(method).upper() for method in effective.get("methods") or []),
        plain_hosts=plain,
        wildcard_hosts=wildcards,
        headers=headers,
        prefixes=prefixes,
        regexes=regexes,
        weight=weight,
    )


class Router:
    def __init__(self, routes: list[CompiledRoute]) -> None:
        self.routes = routes

    def match(self, method: str, host: str, path: str, headers: dict[str, list[str]]) -> Match | None:
        best: tuple[tuple[int, ...], Match] | None = None
        host = _strip_port(host.lower())
        for compiled in self.routes:
            found = _match_one(compiled, method, host, path, headers)
            if found is None:
                continue
            match, exact_host = found
            regex_priority = int(compiled.route.get("regex_priority") or 0) if match.is_regex else 0
            key = (
                compiled.weight,
                int(exact_host),
                len(compiled.headers),
                int(match.is_regex),
                regex_priority,
                len(match.matched_path),
                -compiled.seq,
            )
            if best is None or key > best[0]:
                best = (key, match)
        return None if best is None else best[1]


def _match_one(
    compiled: CompiledRoute, method: str, host: str, path: str, headers: dict[str, list[str]]
) -> tuple[Match, bool] | None:
    if compiled.methods and method.upper() not in compiled.methods:
        return None
    exact_host = False
    if compiled.plain_hosts or compiled.wildcard_hosts:
        if host in compiled.plain_hosts:
            exact_host = True
        elif not any(pattern.match(host) for pattern in compiled.wildcard_hosts):
            return None
    for name, values in compiled.headers:
        present = [value.lower() for value in headers.get(name, [])]
        if not any(value in values for value in present):
            return None
    if not compiled.prefixes and not compiled.regexes:
        return Match(compiled, "", False), exact_host
    best: Match | None = None
    for pattern in compiled.regexes:
        found = pattern.match(path)
        if found and (best is None or len(found.group(0)) > len(best.matched_path)):
            best = Match(compiled, found.group(0), True)
    if best is not None:
        return best, exact_host
    for prefix in compiled.prefixes:
        if path.startswith(prefix) and (best is None or len(prefix) > len(best.matched_path)):
            best = Match(compiled, prefix, False)
    return (best, exact_host) if best is not None else None


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def upstream_path(service_path: str | None, request_path: str, match: Match) -> str:
    """The path sent upstream, per Kong's ``strip_path`` and ``path_handling`` (``v0`` or ``v1``)."""
    route = match.route.route
    remainder = request_path
    if route.get("strip_path") and match.matched_path:
        remainder = request_path[len(match.matched_path) :]
    base = service_path or "/"
    if remainder == "":
        return base
    if route.get("path_handling") == "v1":
        if base.endswith("/") and remainder.startswith("/"):
            return base + remainder[1:]
        if base == "/" and not remainder.startswith("/"):
            return "/" + remainder
        return base + remainder if (route.get("strip_path") and match.matched_path) else _join(base, remainder)
    return _join(base, remainder)


def _join(base: str, remainder: str) -> str:
    return base.rstrip("/") + "/" + remainder.lstrip("/")
