"""The lab's SIP proxy and registrar (a Kamailio stand-in): ``python -m lab.sip --config FILE``.

Asyncio UDP SIP written on the standard library: `lab.sip.message` (parsing), `lab.sip.digest` (auth),
`lab.sip.location` (registrations), `lab.sip.sdp` (media anchoring), `lab.sip.cdr` (CDRs), `lab.sip.proxy`
(routing and transactions), configuration keys in `lab.sip.config`. SIPp scenarios that work through it (and
through Kamailio) are in ``lab/sip/scenarios/``.
"""
