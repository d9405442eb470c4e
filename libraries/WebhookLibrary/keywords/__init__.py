"""WebhookLibrary's keyword components; each gets the shared ``WebhookContext``."""

from WebhookLibrary.keywords.checks import RequestKeywords
from WebhookLibrary.keywords.receiver import ReceiverKeywords

__all__ = ["ReceiverKeywords", "RequestKeywords"]
