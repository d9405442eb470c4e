"""SipLibrary's keyword components; the façade in ``SipLibrary/__init__.py`` composes them."""

from SipLibrary.keywords.calls import CallKeywords
from SipLibrary.keywords.dtmf import DtmfKeywords
from SipLibrary.keywords.media import MediaKeywords
from SipLibrary.keywords.messages import MessageKeywords
from SipLibrary.keywords.midcall import MidCallKeywords
from SipLibrary.keywords.phones import PhoneKeywords

__all__ = ["CallKeywords", "DtmfKeywords", "MediaKeywords", "MessageKeywords", "MidCallKeywords", "PhoneKeywords"]
