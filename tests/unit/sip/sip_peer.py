"""A SIP phone in a process of its own, for tests that need a far end outside the test process.

    python sip_peer.py USER [--auto-answer CODE]

Prints ``READY <uri>`` once the phone listens, keeps pjsua2 pumped until stdin closes (or says ``quit``),
then prints ``CALLS <json>`` (every call's info) and exits 0. Used for the attended transfer, which needs
more call legs than one pjsua2-python process holds.
"""

from __future__ import annotations

import argparse
import json
import select
import sys
from datetime import timedelta

from SipLibrary import SipLibrary


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("user")
    parser.add_argument("--auto-answer", type=int, default=200)
    args = parser.parse_args()
    library = SipLibrary(timeout=timedelta(seconds=5))
    uri = library.create_sip_phone("peer", args.user, auto_answer=args.auto_answer)
    sys.stdout.write(f"READY {uri}\n")
    sys.stdout.flush()

    def stdin_done() -> bool:
        readable, _, _ = select.select([sys.stdin], [], [], 0)
        return bool(readable) and sys.stdin.readline().strip() in ("", "quit")

    while library.ctx.wait(stdin_done, 0.05) is None:
        pass
    calls = [library.get_call_info("peer", call=handle) for handle in library.get_sip_phone_info("peer")["calls"]]
    sys.stdout.write(f"CALLS {json.dumps(calls)}\n")
    sys.stdout.flush()
    library.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
