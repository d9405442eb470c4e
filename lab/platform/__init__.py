"""The lab's platform API: a FastAPI + SQLAlchemy stand-in for the platform's provisioning REST API.

It sits behind the API gateway (which names the customer account in ``X-Consumer-Username``), pushes voice
provisioning to the SIP proxies over Kamailio-style JSON-RPC, sends SMS through the SMS gateway's Jasmin-shaped
HTTP API and reads the proxies' CDRs. ``create_app`` builds the application; ``python -m lab.platform --config
FILE`` runs it under uvicorn. The OpenAPI document is served at ``/openapi.json`` (``/docs`` to read it).
"""

from lab.platform.app import create_app
from lab.platform.config import PlatformConfig, load

__all__ = ["PlatformConfig", "create_app", "load"]
