"""The lab's billing service: a FastAPI + SQLAlchemy stand-in for the platform's billing REST API.

The contract it serves is ``docs/billing-api.md``; ``create_app`` builds the application and
``python -m lab.billing`` runs it under uvicorn.
"""

from lab.billing.app import create_app

__all__ = ["create_app"]
