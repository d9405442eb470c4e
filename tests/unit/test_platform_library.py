"""PlatformLibrary against the real platform API (uvicorn on a free loopback port) with fake peers.

The consumer the gateway would name is given with the library's ``headers`` import argument; the fake SMS
gateway calls the platform's DLR URL back like Jasmin's DLR thrower, so receipts arrive asynchronously.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.request import Request, urlopen

import pytest
import uvicorn
from assertionengine import AssertionOperator
from PlatformLibrary import PlatformApiError, PlatformLibrary, PlatformUnreachableError
from PlatformLibrary.context import PlatformContext
from robot.api.types import Secret
from telco_common.rejection import check_refusal as check_rejection

from lab.platform import create_app
from lab.platform.config import parse

API_KEY = "key-of-acme-5e1f9a"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Peers:
    """A fake Kamailio JSON-RPC endpoint, a fake Jasmin /send that throws DLRs back, a webhook receiver."""

    rpc_calls: list[tuple[str, list[Any]]] = field(default_factory=list)
    dialogs: list[dict[str, Any]] = field(default_factory=list)
    sends: list[dict[str, str]] = field(default_factory=list)
    final_state: str = "DELIVRD"
    hooks: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    servers: list[ThreadingHTTPServer] = field(default_factory=list)

    def serve(self, handle: Any) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload = handle(dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    def rpc(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        request = json.loads(body)
        self.rpc_calls.append((request["method"], request["params"]))
        result: Any = self.dialogs if request["method"] == "dlg.list" else {}
        return 200, json.dumps({"jsonrpc": "2.0", "result": result, "id": request["id"]}).encode()

    def jasmin(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        form = {key: values[-1] for key, values in parse_qs(body.decode()).items()}
        form["_id"] = str(uuid.uuid4())
        self.sends.append(form)
        threading.Thread(target=self._throw_dlrs, args=(form,), daemon=True).start()
        return 200, f'Success "{form["_id"]}"'.encode()

    def _throw_dlrs(self, form: dict[str, str]) -> None:
        time.sleep(0.05)
        for level, status in (("1", "ESME_ROK"), ("2", self.final_state)):
            data = f"id={form['_id']}&level={level}&message_status={status}&err=000".encode()
            request = Request(form["dlr-url"], data=data, method="POST")
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
            with urlopen(request, timeout=5) as answer:
                assert answer.read() == b"ACK/Jasmin"

    def receive(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        self.hooks.append(({key.lower(): value for key, value in headers.items()}, body))
        return 200, b"ok"


@dataclass
class Platform:
    base_url: str
    peers: Peers
    receiver_url: str


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    folder: Path = tmp_path_factory.mktemp("platform")
    peers = Peers()
    rpc_url = peers.serve(peers.rpc)
    jasmin_url = peers.serve(peers.jasmin)
    receiver_url = peers.serve(peers.receive)
    port = _free_port()
    config = parse(
        {
            "host": "127.0.0.1",
            "port": port,
            "database": f"sqlite:///{folder / 'platform.db'}",
            "sms": {"http_url": jasmin_url, "username": "apps", "password": "apps-pw"},
            "voice_rpc": [f"{rpc_url}/RPC"],
            "cdr_database": f"sqlite:///{folder / 'cdr.db'}",
            "webhook_timeout": 2,
            "campaign_tick": 0.01,
        }
    )
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the platform API did not start"
        time.sleep(0.02)
    yield Platform(f"http://127.0.0.1:{port}/api/v1", peers, receiver_url)
    server.should_exit = True
    thread.join(timeout=10)
    for http in peers.servers:
        http.shutdown()
        http.server_close()


def _library(platform: Platform, consumer: str) -> PlatformLibrary:
    return PlatformLibrary(base_url=platform.base_url, api_key=API_KEY, headers={"X-Consumer-Username": consumer})


def _verified(platform: Platform, consumer: str, phone: str) -> PlatformLibrary:
    library = _library(platform, consumer)
    onboarding = library.start_onboarding("Ann", f"{consumer}@example.com", phone)
    code = re.search(r"\b(\d{6})\b", platform.peers.sends[-1]["content"]).group(1)  # type: ignore[union-attr]
    library.verify_onboarding(onboarding["id"], code)
    assert library.get_account_status(AssertionOperator["=="], "active") == "active"
    return library


def test_voice_keywords_provision_route_and_set_caller_id(platform: Platform) -> None:
    library = _verified(platform, "voice-co", "+254700000101")
    trunk = library.create_trunk(
        "main", "+254711000101", caller_id_policy="from_pool", caller_id_pool=["+254711000102"]
    )
    password = trunk["sip"]["password"]
    assert isinstance(password, Secret)  # logged as <secret> wherever Robot logs it
    assert password.value and password.value not in repr(trunk)
    assert library.get_trunk(trunk["id"])["sip"]["password"] is None
    assert ("htable.sets", ["trunks", trunk["sip"]["username"], password.value]) in platform.peers.rpc_calls
    rule = library.create_routing_rule("25490", "trunk", str(trunk["id"]))
    assert rule["active"] is True
    assert library.get_routing_rules(prefix="25490")[0]["target"].startswith(f"sip:{trunk['sip']['username']}@")
    library.set_caller_id("+254711000102", trunk_id=trunk["id"])
    assert library.get_trunk_caller_id(trunk["id"], AssertionOperator["=="], "+254711000102") == "+254711000102"
    library.set_caller_id("+254711000101", trunk_id=trunk["id"])  # changes the existing one
    assert [entry["number"] for entry in library.get_caller_ids()] == ["+254711000101"]
    assert ("htable.sets", ["cli", trunk["sip"]["username"], "+254711000101"]) in platform.peers.rpc_calls
    username = trunk["sip"]["username"]
    platform.peers.dialogs = [
        {
            "h_entry": 7,
            "h_id": 9,
            "call-id": "k1@x",
            "from_uri": f"sip:{username}@d",
            "to_uri": "sip:2547@d",
            "state": 2,
        }
    ]
    assert library.get_call_state("k1@x", AssertionOperator["=="], "ringing") == "ringing"
    assert library.get_active_call_count() == 1
    library.hang_up_call("k1@x")
    assert ("dlg.end_dlg", [7, 9]) in platform.peers.rpc_calls
    library.transfer_call("k1@x", "sip:q@apps")
    assert ("telco.transfer", ["k1@x", "sip:q@apps"]) in platform.peers.rpc_calls
    assert library.get_cdrs(call_id="k1@x") == []


def test_sms_status_is_read_until_the_receipt_arrives(platform: Platform) -> None:
    library = _library(platform, "sms-co")
    sms = library.send_sms("+254700000201", "Acme", "Hello")
    assert sms["status"] == "queued"
    assert (
        library.get_sms_status(sms["id"], AssertionOperator["=="], "delivered", timeout=timedelta(seconds=5))
        == "delivered"
    )
    template = library.create_sms_template("otp", "Code {{code}}")
    assert library.render_sms_template(template["id"], code=42) == "Code 42"
    templated = library.send_sms_from_template("+254700000202", "Acme", template["id"], code="7")
    assert templated["text"] == "Code 7"
    assert library.get_sms_analytics_figure("delivered", AssertionOperator[">="], 2, timeout=timedelta(seconds=5)) >= 2


def test_campaign_progress_and_completion(platform: Platform) -> None:
    library = _library(platform, "bulk-co")
    template = library.create_sms_template("promo", "Hi {{name}}")
    campaign = library.create_sms_campaign("spring", "Acme", template_id=template["id"], rate_per_second=50)
    library.upload_campaign_contacts(campaign["id"], [{"to": "+254700000301", "variables": {"name": "Ann"}}])
    uploaded = library.upload_campaign_contacts_from_csv(campaign["id"], "to,name\n+254700000302,Bo\n")
    assert uploaded["total"] == 2
    library.start_sms_campaign(campaign["id"])
    assert (
        library.get_campaign_status(campaign["id"], AssertionOperator["=="], "completed", timeout=timedelta(seconds=10))
        == "completed"
    )
    assert library.get_campaign_progress(campaign["id"], "delivered", AssertionOperator["=="], 2) == 2
    assert library.get_campaign_progress(campaign["id"]) == {
        "total": 2,
        "pending": 0,
        "sent": 2,
        "delivered": 2,
        "failed": 0,
        "cancelled": 0,
    }
    assert [r["status"] for r in library.get_campaign_recipients(campaign["id"])] == ["delivered", "delivered"]


def test_webhook_signature_keywords_check_a_real_delivery(platform: Platform) -> None:
    library = _library(platform, "hook-co")
    hook = library.register_webhook(platform.receiver_url, "sms.delivered")
    sms = library.send_sms("+254700000401", "Acme", "x")
    deadline = time.monotonic() + 5
    while not [h for h in platform.peers.hooks if json.loads(h[1])["data"]["id"] == sms["id"]]:
        assert time.monotonic() < deadline, "no webhook arrived"
        time.sleep(0.02)
    headers, body = next(h for h in platform.peers.hooks if json.loads(h[1])["data"]["id"] == sms["id"])
    library.webhook_signature_should_be_valid(body, headers["x-platform-signature"], hook["secret"])
    assert library.get_webhook_signature(body, hook["secret"]) == headers["x-platform-signature"]
    assert library.get_webhook_signature(body, hook["secret"].value) == headers["x-platform-signature"]
    with pytest.raises(AssertionError, match="should have been the HMAC-SHA256"):
        library.webhook_signature_should_be_valid(body + b" ", headers["x-platform-signature"], hook["secret"])
    assert (
        library.get_webhook_delivery_count(
            hook["id"], "delivered", AssertionOperator[">="], 1, timeout=timedelta(seconds=5)
        )
        >= 1
    )


def test_api_errors_quote_the_api_and_never_the_key(platform: Platform) -> None:
    library = _library(platform, "err-co")
    with pytest.raises(PlatformApiError) as caught:
        library.create_trunk("main", "+254711000501")
    error = caught.value
    assert (error.status, error.field, error.code) == (403, "account", "forbidden")
    assert str(error).startswith(
        "Platform (POST /trunks) failed with HTTP 403 (field 'account'): account 'err-co' is not verified"
    )
    assert check_rejection("Create Trunk", error, 403, "account")["field"] == "account"
    with pytest.raises(AssertionError, match="naming field 'number'"):
        check_rejection("Create Trunk", error, 403, "number")
    with pytest.raises(PlatformApiError, match=r"HTTP 422 \(field 'variables.code'\)"):
        template = library.create_sms_template("t", "{{code}}")
        library.render_sms_template(template["id"])
    anonymous = PlatformLibrary(base_url=platform.base_url, api_key=API_KEY)  # no gateway: no consumer named
    with pytest.raises(PlatformApiError) as refused:
        anonymous.get_trunks()
    assert refused.value.status == 401
    assert refused.value.field == "x_consumer_username"
    assert API_KEY not in str(refused.value)


def test_the_api_key_is_masked_in_every_log_line(platform: Platform, caplog: pytest.LogCaptureFixture) -> None:
    library = _library(platform, "mask-co")
    with caplog.at_level(logging.DEBUG, logger="RobotFramework"):
        hook = library.register_webhook(platform.receiver_url, "sms.failed", secret="s3cr3t-of-the-webhook-1")
        library.use_platform_api_key("second-key-77aa")
        library.get_webhooks()
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "POST /webhooks -> 201" in text
    assert isinstance(hook["secret"], Secret)
    assert hook["secret"].value == "s3cr3t-of-the-webhook-1"
    for secret in (API_KEY, "second-key-77aa", "s3cr3t-of-the-webhook-1"):
        assert secret not in text
    assert "'apikey': '***'" in text
    previous = library.use_platform_api_key(API_KEY)
    assert isinstance(previous, Secret)
    assert previous.value == "second-key-77aa"


def test_debug_text_masks_every_secret_ever_used() -> None:
    context = PlatformContext("http://127.0.0.1:1/api/v1", "first-key", timedelta(seconds=1), None)
    context.set_api_key("second-key")
    context.add_secret("trunk-password-1")
    assert context.redact("first-key second-key trunk-password-1 kept") == "*** *** *** kept"


def test_unreachable_platform_fails_fast_naming_the_url_and_the_fix() -> None:
    port = _free_port()
    library = PlatformLibrary(base_url=f"http://127.0.0.1:{port}/platform/api/v1", timeout=timedelta(seconds=2))
    started = time.monotonic()
    with pytest.raises(PlatformUnreachableError) as caught:
        library.get_sms_messages()
    assert time.monotonic() - started < 3
    assert f"http://127.0.0.1:{port}/platform/api/v1" in str(caught.value)
    assert "PLATFORM_URL" in str(caught.value)


def test_retrying_getter_reports_expected_and_actual(platform: Platform) -> None:
    library = _library(platform, "retry-co")
    with pytest.raises(AssertionError) as caught:
        library.get_account_status(AssertionOperator["=="], "active", timeout=timedelta(milliseconds=300))
    assert "unverified" in str(caught.value)
    assert "active" in str(caught.value)
    assert "retried for 0.3 s" in str(caught.value)


def test_bad_import_arguments_and_misuse_are_refused() -> None:
    with pytest.raises(ValueError, match="is not an HTTP URL"):
        PlatformLibrary(base_url="127.0.0.1:18000/platform/api/v1")
    with pytest.raises(ValueError, match="no API version prefix"):
        PlatformLibrary(base_url="http://127.0.0.1:18000/platform")
    with pytest.raises(ValueError, match="timeout must be positive"):
        PlatformLibrary(base_url="http://127.0.0.1:1/api/v1", timeout=timedelta(0))
    library = PlatformLibrary(base_url="http://127.0.0.1:1/api/v1")
    with pytest.raises(ValueError, match="exactly one of trunk_id= or user="):
        library.set_caller_id("+254711000001")
    with pytest.raises(ValueError, match="no figure 'speed'"):
        library.get_sms_analytics_figure("speed")
    with pytest.raises(ValueError, match="at least one event"):
        library.register_webhook("http://127.0.0.1:1/x")
