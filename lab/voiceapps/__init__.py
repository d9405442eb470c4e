"""The platform's voice application server, as the lab runs it: ``python -m lab.voiceapps --config FILE``.

Real SIP user agents with real RTP (pjsua2, one endpoint in poll mode on the main thread) at
``sip:<service>@host:port`` and one SMPP transceiver bind to the SMS gateway:

* ``voicemail`` (TEST-INT-001, -003): greeting, recording of the caller, a missed-call SMS to the callee (To or
  Diversion), the recording's in-band DTMF (Goertzel, `lab.voiceapps.dtmf`) sent on as a "transcription" SMS;
* ``callback`` (TEST-INT-002): MO "CALL ME" makes the app ring the subscriber and play a message;
* forwarding (TEST-INT-004): MO "FWD <user>" / "FWD OFF" drive the proxy's Kamailio-style JSON-RPC;
* ``twofa`` (TEST-INT-005): a code by SMS, collected as RFC 2833 or SIP INFO DTMF during the call;
* ``ivr`` and ``queue``: a DTMF menu into call queues that bridge callers to free agents, with a position SMS.

GET /health, /events and /calls on ``http_port``. Configuration: `lab.voiceapps.config`.
"""
