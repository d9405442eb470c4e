"""Run the carrier SMSC as a process of its own: ``python -m SmppLibrary.carrier --port N --account user:pw``.

It logs one line when it listens (``carrier SMSC listening on HOST:PORT, control API http://HOST:PORT``),
serves until SIGTERM or SIGINT, then closes every bind and exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from SmppLibrary.carrier.control import ControlServer
from SmppLibrary.carrier.server import Behaviour, CarrierSmsc
from SmppLibrary.errors import CarrierError

log = logging.getLogger("SmppLibrary.carrier")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m SmppLibrary.carrier", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=2776, help="SMPP port (0: a free one; default 2776)")
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="SYSTEM_ID:PASSWORD",
        help="an account allowed to bind (repeat for more; none: accept every bind)",
    )
    parser.add_argument(
        "--accounts-file",
        default=None,
        metavar="PATH",
        help='JSON object {"system_id": "password", ...}; keeps passwords out of the process list',
    )
    parser.add_argument("--control-port", type=int, default=None, help="HTTP control API port (0: a free one)")
    parser.add_argument("--system-id", default="carrier", help="system_id in bind responses")
    parser.add_argument("--submit-status", default="ESME_ROK", help="command_status for submit_sm_resp")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each submit_sm_resp")
    parser.add_argument("--dlr-state", default="DELIVRD", help="state of automatic delivery receipts")
    parser.add_argument("--dlr-delay", type=float, default=0.0, help="seconds from submit_sm_resp to its receipt")
    parser.add_argument("--max-rate", type=float, default=None, help="submits per second before ESME_RTHROTTLED")
    return parser.parse_args(argv)


def accounts_from(values: list[str], path: str | None = None) -> dict[str, str]:
    accounts: dict[str, str] = {}
    if path:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(f"Cannot read --accounts-file {path}: {error}") from None
        if not isinstance(data, dict):
            raise ValueError(f"--accounts-file {path} must hold a JSON object of system_id to password.")
        accounts.update({str(key): str(value) for key, value in data.items()})
    for value in values:
        system_id, separator, password = value.partition(":")
        if not separator or not system_id:
            raise ValueError(f"--account '{value.split(':')[0]}:...' must be SYSTEM_ID:PASSWORD.")
        accounts[system_id] = password
    return accounts


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        behaviour = Behaviour()
        behaviour.update(
            {
                "submit_status": args.submit_status,
                "latency": args.latency,
                "dlr_state": args.dlr_state,
                "dlr_delay": args.dlr_delay,
                "max_rate": args.max_rate,
            }
        )
        carrier = CarrierSmsc(
            host=args.host,
            port=args.port,
            accounts=accounts_from(args.account, args.accounts_file),
            behaviour=behaviour,
            system_id=args.system_id,
        )
        port = carrier.start()
    except (ValueError, CarrierError) as error:
        log.error("%s", error)
        return 2
    control: ControlServer | None = None
    if args.control_port is not None:
        try:
            control = ControlServer(carrier, host=args.host, port=args.control_port)
        except OSError as error:
            log.error("cannot listen for the control API on %s:%s: %s", args.host, args.control_port, error)
            carrier.stop()
            return 2
        control.start()
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "carrier SMSC listening on %s:%s, control API %s, accounts %s",
        args.host,
        port,
        control.url if control else "off",
        ", ".join(sorted(carrier.accounts)) or "(any)",
    )
    while not stopping.wait(0.5):
        if not carrier.running:
            log.error("the carrier SMSC thread ended unexpectedly")
            break
    if control is not None:
        control.stop()
    carrier.stop()
    log.info("carrier SMSC stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
