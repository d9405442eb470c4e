"""The lab's SMS gateway: the stand-in for Jasmin, run as ``python -m lab.smsgw --config FILE``.

It speaks what Jasmin speaks to the platform's customers and carriers: an SMPP 3.4 server for customer binds,
Jasmin's HTTP API (``/send``, ``/ping``) plus ``/health`` for the lab, one SMPP client bind per upstream
connector with prefix routing, delivery receipts mapped to the gateway's own message ids (SMPP deliver_sm and
HTTP ``dlr-url`` callbacks), MO to a bound receiver of the user its destination prefix names, and a durable
SQLite queue so that nothing is lost while a carrier is down or the gateway restarts (at least once).

Modules: ``config`` (the JSON file), ``store`` (SQLite), ``server`` (customer SMPP and their outbox),
``upstream`` (connector binds), ``dispatcher`` (sending queued messages), ``http_api``, ``dlr_thrower`` (HTTP
callbacks), ``gateway`` (wiring and receipt/MO mapping), ``wire`` (SMPP framing).
"""

from lab.smsgw.config import ConfigError, GatewayConfig, load
from lab.smsgw.gateway import Gateway

__all__ = ["ConfigError", "Gateway", "GatewayConfig", "load"]
