"""One Kong node: the Admin API and the proxy on their ports, over the database it shares with its peer."""

from __future__ import annotations

import logging
import threading
from typing import Any

from lab.kong.admin import AdminApi, NodeInfo
from lab.kong.balancer import ActiveChecker, Balancer, Health, healthchecks
from lab.kong.config import KongConfig
from lab.kong.proxy import ConfigCache, Proxy
from lab.kong.server import HttpServer
from lab.kong.store import Store

log = logging.getLogger("lab.kong")


class Node:
    """Build with a `KongConfig`, then `start` (binds both ports) and `stop`."""

    def __init__(self, config: KongConfig) -> None:
        self.config = config
        self.store = Store(config.database)
        self.health = Health()
        self.balancer = Balancer(self.health)
        self.cache = ConfigCache(self.store, self.health)
        info = NodeInfo(
            name=config.node,
            node_id=config.node_id,
            admin_listen=f"{config.admin_host}:{config.admin_port}",
            proxy_listen=f"{config.proxy_host}:{config.proxy_port}",
            database=config.database,
        )
        self.admin = AdminApi(self.store, info, config.admin_token, self)
        self.proxy = Proxy(self.cache, self.balancer, self.store, config.proxy_port)
        self.checker = ActiveChecker(self.health, self.cache.upstreams_with_targets)
        self._servers: list[HttpServer] = []
        self._threads: list[threading.Thread] = []

    # --- HealthView, for the Admin API -------------------------------------------------------------------------

    def target_health(self, upstream: dict[str, Any], targets: list[dict[str, Any]]) -> list[str]:
        self.cache.current()  # replays manual health changes made through the other node
        checks = healthchecks(upstream)
        return [self.health.describe(str(upstream["id"]), str(target["target"]), checks) for target in targets]

    def set_health(self, upstream_id: str, target: str, address: str | None, healthy: bool) -> None:
        self.store.add_health_event(upstream_id, target, address, healthy)
        self.cache.current()

    # --- life cycle --------------------------------------------------------------------------------------------

    def start(self) -> None:
        admin = HttpServer(self.config.admin_host, self.config.admin_port, self.admin)
        try:
            proxy = HttpServer(self.config.proxy_host, self.config.proxy_port, self.proxy)
        except OSError:
            admin.server_close()
            raise
        self._servers = [admin, proxy]
        self._threads = [admin.start("kong-admin"), proxy.start("kong-proxy")]
        self.checker.start()
        log.info(
            "node %s: Admin API on %s:%d, proxy on %s:%d",
            self.config.node,
            self.config.admin_host,
            self.config.admin_port,
            self.config.proxy_host,
            self.config.proxy_port,
        )

    def stop(self) -> None:
        self.checker.stop()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self.proxy.close()
        self.store.close()
        log.info("node %s stopped", self.config.node)
