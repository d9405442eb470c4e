"""The upstream carrier SMSC: an SMPP 3.4 server the SMS gateway binds to, with an HTTP/JSON control API.

In-process: ``CarrierSmsc(accounts={...}).start()`` (the ``Start Carrier SMSC`` keyword does this).
Standalone, for the lab supervisor::

    python -m SmppLibrary.carrier --host 127.0.0.1 --port 2776 --account gateway:secret --control-port 8776
"""

from SmppLibrary.carrier.control import CarrierApi, ControlServer, RemoteCarrier
from SmppLibrary.carrier.records import group_messages
from SmppLibrary.carrier.server import Behaviour, CarrierSmsc

__all__ = ["Behaviour", "CarrierApi", "CarrierSmsc", "ControlServer", "RemoteCarrier", "group_messages"]
