"""SipLoadLibrary's keyword components; the façade in ``SipLoadLibrary/__init__.py`` composes them."""

from SipLoadLibrary.keywords.results import ResultKeywords
from SipLoadLibrary.keywords.running import RunKeywords

__all__ = ["ResultKeywords", "RunKeywords"]
