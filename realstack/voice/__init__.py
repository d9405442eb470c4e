"""Real Kamailio 5.6 + RTPEngine for the real-stack profile: ``python -m realstack.voice install|up|down|status|smoke``.

See ``__main__.py`` for the commands, ``kamailio.cfg.template`` for what the proxies do (the lab proxy's
behaviour), ``settings.py`` for the routing data and how the template is filled in, ``database.py`` and
``cdr_schema.sql`` for the accounting tables and the ``cdrs`` view, ``smoke.py`` for the proof call.
"""

from realstack.voice.errors import RealStackError
from realstack.voice.settings import Paths, Routing, VoiceSettings

__all__ = ["Paths", "RealStackError", "Routing", "VoiceSettings"]
