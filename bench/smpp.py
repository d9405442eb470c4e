"""SMPP throughput over one bind against the lab's SMS gateway, and receipt latency.

Three ways to submit the same messages over one bind, side by side in one run:
- a bare smpplib loop that waits for each submit_sm_resp (the floor any library on smpplib can reach),
- SmppLibrary's ``Submit SMS`` waiting for each response (what a functional test does),
- SmppLibrary's ``Submit Bulk SMS`` with a window of outstanding submits (what a load test does).
"""

from __future__ import annotations

import secrets
import socket
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import smpplib.client
import smpplib.consts
import yaml
from SmppLibrary import SmppLibrary

from bench.stats import summary_ms


def smpp_figures(variables_file: str, count: int = 2000, receipts: int = 100) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(Path(variables_file).read_text(encoding="utf-8"))
    host, port = str(values["SMPP_HOST"]), int(values["SMPP_PORT"])
    account = values["SMPP_ACCOUNTS"][-1]  # the last account: no test worker uses it during a bench
    destination = f"254799{secrets.randbelow(10**9):09d}"
    bare = _bare_smpplib(host, port, account, destination, count)
    library = SmppLibrary(timeout=timedelta(seconds=30))
    try:
        library.open_smpp_connection(host, port, account["system_id"], account["password"], alias="bench")
        started = time.perf_counter()
        for _ in range(count):
            library.submit_sms("254700000000", destination, "bench", registered_delivery=False)
        waited = count / (time.perf_counter() - started)
        windowed = {
            window: library.submit_bulk_sms(count, "254700000000", destination, "bench", window=window)
            for window in (10, 50)
        }
        latency = _receipt_latency(library, destination, receipts)
    finally:
        library.close_all_smpp_connections()
    return {
        "messages": count,
        "bare_smpplib_wait_each_per_s": round(bare, 1),
        "library_wait_each_per_s": round(waited, 1),
        "library_vs_bare": round(waited / bare, 2),
        **{f"library_window_{w}_per_s": round(r["rate"], 1) for w, r in windowed.items()},
        "window_50_vs_wait_each": round(windowed[50]["rate"] / waited, 2),
        "window_50_failed": windowed[50]["failed"],
        "receipt_latency": latency,
    }


def _bare_smpplib(host: str, port: int, account: dict[str, str], destination: str, count: int) -> float:
    client = smpplib.client.Client(host, port, timeout=10, allow_unknown_opt_params=True)
    client.connect()
    client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.bind_transmitter(system_id=account["system_id"], password=account["password"])
    try:
        started = time.perf_counter()
        for _ in range(count):
            client.send_message(
                source_addr_ton=1,
                source_addr="254700000000",
                dest_addr_ton=1,
                destination_addr=destination,
                short_message=b"bench",
                data_coding=0,
            )
            while client.read_pdu().command != "submit_sm_resp":
                pass
        return count / (time.perf_counter() - started)
    finally:
        client.unbind()
        client.disconnect()


def _receipt_latency(library: SmppLibrary, destination: str, count: int) -> dict[str, float]:
    """Submit one message at a time and wait for its DELIVRD receipt: submit to receipt, in ms."""
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        ids = library.submit_sms("254700000000", destination, "receipt bench", registered_delivery=True)
        library.wait_until_delivery_receipt(ids, state="DELIVRD", timeout=timedelta(seconds=10))
        seconds.append(time.perf_counter() - started)
    figures = summary_ms(seconds)
    figures["mean_ms"] = round(statistics.mean(seconds) * 1000, 2)
    return figures
