"""Pieces every telco-robot keyword library shares: errors, bounded waits, secret masking, test-data names.

Nothing here knows a protocol or the lab; libraries import from here so that a wait, a masked secret or a
failure message looks the same in every library's log.
"""

from telco_common.errors import TelcoError
from telco_common.masking import mask_secret, redact
from telco_common.naming import TestDataNamespace
from telco_common.waiting import retry_assertion, wait_until

__all__ = ["TelcoError", "TestDataNamespace", "mask_secret", "redact", "retry_assertion", "wait_until"]
