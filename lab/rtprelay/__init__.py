"""The lab's media relay (an RTPEngine stand-in): ``python -m lab.rtprelay --config FILE``.

The SIP proxy (``lab.sip``) anchors each call's media here: it asks for ports with ``offer``/``answer`` over the
JSON-over-UDP control protocol (`lab.rtprelay.relay`, client in `lab.rtprelay.client`), writes them into the SDP
it forwards, and ``delete``s the session when the call ends. ``GET /health`` and ``GET /sessions`` on the HTTP
port show sessions and per-call packet/byte counters.
"""
