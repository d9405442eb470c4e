"""WebhookLibrary against real loopback HTTP: receivers, filters, waits, counts, failure texts, cleanup."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import SimpleNamespace

import pytest
import requests
from WebhookLibrary import ReceiverNotFoundError, ReceiverStartError, WebhookLibrary

SHORT = timedelta(milliseconds=300)


@pytest.fixture
def library() -> Iterator[WebhookLibrary]:
    lib = WebhookLibrary(timeout=timedelta(seconds=2))
    yield lib
    lib.stop_all_webhook_receivers()
    assert not [thread.name for thread in threading.enumerate() if thread.name.startswith("webhook-receiver-")]


@pytest.fixture
def robot_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Outside a Robot run, robot.api.logger writes to the ``RobotFramework`` Python logger."""
    caplog.set_level(logging.DEBUG, logger="RobotFramework")
    return caplog


def logged(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    """The library's log messages as (thread name, level, message)."""
    return [(r.threadName, r.levelname, r.getMessage()) for r in caplog.records if r.name == "RobotFramework"]


def jasmin_dlr(message_id: str, status: str = "DELIVRD") -> dict[str, str]:
    return {
        "id": message_id,
        "message_status": status,
        "level": "3",
        "connector": "smsc-sim",
        "subdate": "2511210600",
        "donedate": "2511210601",
        "sub": "001",
        "dlvrd": "001",
        "err": "000",
        "text": "hello",
    }


def test_start_returns_a_loopback_url_on_a_free_port(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver(path="dlr")

    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/dlr/")
    assert int(url.split(":")[2].split("/")[0]) > 0
    assert library.get_webhook_receiver_url() == url


def test_jasmin_dlr_posted_as_form_is_acknowledged_and_found_by_its_fields(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver("dlr", path="/dlr/")

    response = requests.post(url + "sms", data=jasmin_dlr("m-1"), timeout=5)
    dlr = library.wait_until_webhook_received("dlr", id="m-1", message_status="DELIVRD")

    assert (response.status_code, response.text) == (200, "ACK/Jasmin")
    assert dlr["method"] == "POST"
    assert dlr["path"] == "/dlr/sms"
    assert dlr["form"] == jasmin_dlr("m-1")
    assert dlr.form.err == "000"
    assert dlr["json"] is None
    assert dlr["response_status"] == 200
    assert dlr["received"][:2] == "20"


def test_jasmin_dlr_by_get_is_read_from_the_query(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver()

    requests.get(url + "dlr", params=jasmin_dlr("m-2", "UNDELIV"), timeout=5)
    dlr = library.wait_until_webhook_received(method="get", form={"id": "m-2"}, message_status="UNDELIV")

    assert dlr["query"] == dlr["form"] == jasmin_dlr("m-2", "UNDELIV")
    assert dlr["body"] == ""


def test_a_form_body_without_content_type_is_read_as_form_fields(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver()

    requests.post(url, data="id=m-12&message_status=DELIVRD", timeout=5)
    requests.post(url, data="just text", timeout=5)

    assert library.wait_until_webhook_received(id="m-12")["form"] == {"id": "m-12", "message_status": "DELIVRD"}
    assert library.get_webhook_requests()[1]["form"] == {}


def test_an_unknown_charset_is_read_as_utf8(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver()

    requests.post(url, data="Grüße".encode(), headers={"Content-Type": "text/plain; charset=bogus"}, timeout=5)

    assert library.wait_until_webhook_received()["body"] == "Grüße"


def test_json_fields_match_by_dotted_path_and_as_text(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver("cdr")
    cdr = {"call": {"id": "c-9", "legs": [{"duration": 7}]}, "billed": True, "cost": 1.5}

    requests.put(url + "cdr?source=sbc", json=cdr, timeout=5)
    found = library.wait_until_webhook_received(
        "cdr", path="/cdr", method="PUT", json={"call.legs.0.duration": "7"}, billed="true", cost=1.5, source="sbc"
    )

    assert found["json"] == cdr
    assert found.json.call.id == "c-9"
    assert found["query"] == {"source": "sbc"}


def test_body_regex_filters_and_a_bad_regex_is_a_usage_error(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver()
    requests.post(url, data="plain text callback 42", headers={"Content-Type": "text/plain"}, timeout=5)

    assert library.wait_until_webhook_received(body_regex=r"callback \d+")["body"] == "plain text callback 42"
    with pytest.raises(ValueError, match=r"body_regex '\(' is not a valid regular expression"):
        library.get_webhook_requests(body_regex="(")


def test_a_wait_returns_each_matching_request_once_in_arrival_order(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver()
    for status in ("ACCEPTD", "DELIVRD"):
        requests.post(url, data=jasmin_dlr("m-3", status), timeout=5)

    first = library.wait_until_webhook_received(id="m-3")
    second = library.wait_until_webhook_received(id="m-3")

    assert (first.form.message_status, second.form.message_status) == ("ACCEPTD", "DELIVRD")
    assert (first.number, second.number) == (1, 2)
    with pytest.raises(AssertionError, match="already returned by a wait"):
        library.wait_until_webhook_received(timeout=SHORT, id="m-3")
    assert len(library.get_webhook_requests(id="m-3")) == 2


def test_timeout_message_quotes_what_was_expected_and_lists_what_arrived(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver("dlr")
    requests.post(url + "dlr", data={"id": "m-4", "message_status": "UNDELIV"}, timeout=5)
    requests.post(url + "outside", json={"id": "m-4"}, timeout=5)

    with pytest.raises(AssertionError) as failure:
        library.wait_until_webhook_received("dlr", SHORT, method="POST", id="m-4", message_status="DELIVRD")

    lines = str(failure.value).splitlines()
    assert lines[0] == (
        "No webhook request with method 'POST' and id='m-4' and message_status='DELIVRD' "
        "reached receiver 'dlr' (waited 0.3 s)."
    )
    assert lines[1] == "2 requests arrived:"
    assert lines[2].startswith("  #1 ")
    assert lines[2].endswith(" POST /dlr -> 200 form: id='m-4', message_status='UNDELIV'")
    assert lines[3].endswith(' POST /outside -> 200 json: {"id":"m-4"}')
    assert len(lines) == 4


def test_timeout_message_says_when_nothing_arrived_and_takes_a_custom_message(library: WebhookLibrary) -> None:
    library.start_webhook_receiver()

    with pytest.raises(AssertionError) as failure:
        library.wait_until_webhook_received(timeout=SHORT)
    assert str(failure.value) == "No webhook request reached receiver 'default' (waited 0.3 s).\nNo request arrived."
    with pytest.raises(AssertionError, match=r"^No DLR for m-5$"):
        library.wait_until_webhook_received(timeout=SHORT, id="m-5", message="No DLR for m-5")


def test_the_listing_of_what_arrived_is_cut_to_20_lines(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver()
    with requests.Session() as session:
        for number in range(30):
            session.post(url, data={"id": f"m-{number}", "text": "x" * 500}, timeout=5)

    with pytest.raises(AssertionError) as failure:
        library.wait_until_webhook_received(timeout=timedelta(0), id="other")

    heading, *listing = str(failure.value).splitlines()
    assert heading.startswith("No webhook request with id='other'")
    assert len(listing) <= 20
    assert listing[0] == "30 requests arrived:"
    assert "12 earlier not shown" in listing[1]
    assert all(len(line) <= 202 for line in listing)
    assert "id='m-29'" in listing[-1]


def test_webhook_count_should_be_counts_matching_requests(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver()
    for message_id in ("a", "a", "b"):
        requests.post(url, data={"id": message_id}, timeout=5)

    library.webhook_count_should_be(3)
    library.webhook_count_should_be(2, id="a")
    library.webhook_count_should_be(0, id="c")
    with pytest.raises(AssertionError) as failure:
        library.webhook_count_should_be(1, id="a")
    assert str(failure.value).startswith(
        "Webhook receiver 'default' should have received 1 request(s) with id='a' but received 2.\n3 requests arrived:"
    )


def test_webhook_count_should_be_waits_up_to_its_timeout(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver()

    def post_later() -> None:
        for _ in range(2):
            time.sleep(0.1)
            requests.post(url, json={"id": "late"}, timeout=5)

    sender = threading.Thread(target=post_later)
    sender.start()
    library.webhook_count_should_be(2, timeout=timedelta(seconds=5), id="late")
    sender.join()
    with pytest.raises(AssertionError, match=r"should have received 3 request\(s\) .* but received 2 \(waited 0.3 s\)"):
        library.webhook_count_should_be(3, timeout=SHORT, id="late")


def test_webhook_should_not_be_received_ignores_requests_a_wait_returned(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver()
    requests.post(url, data=jasmin_dlr("m-6"), timeout=5)
    library.wait_until_webhook_received(id="m-6")

    library.webhook_should_not_be_received(within=SHORT, id="m-6")

    requests.post(url, data=jasmin_dlr("m-6"), timeout=5)
    started = time.monotonic()
    with pytest.raises(AssertionError) as failure:
        library.webhook_should_not_be_received(within=timedelta(seconds=5), id="m-6")
    assert time.monotonic() - started < 2
    assert str(failure.value).startswith(
        "Webhook receiver 'default' should not have received a request with id='m-6' but got #2 "
    )


def test_twenty_concurrent_posts_are_all_recorded(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver()

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda n: requests.post(url, json={"n": n}, timeout=5).status_code, range(20)))

    assert statuses == [200] * 20
    library.webhook_count_should_be(20)
    recorded = library.get_webhook_requests()
    assert sorted(r.json.n for r in recorded) == list(range(20))
    assert sorted(r.number for r in recorded) == list(range(1, 21))


def test_stop_frees_the_port_and_keeps_what_was_recorded(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver("dlr")
    port = int(url.split(":")[2].rstrip("/"))
    requests.post(url, data={"id": "m-7"}, timeout=5)

    library.stop_webhook_receiver("dlr")

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
    with pytest.raises(requests.ConnectionError):
        requests.post(url, data={"id": "m-8"}, timeout=2)
    library.webhook_count_should_be(1, "dlr", id="m-7")
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"reached receiver 'dlr' \(it is stopped\) \(waited 0 s\)"):
        library.wait_until_webhook_received("dlr", timedelta(seconds=5), id="m-8")
    assert time.monotonic() - started < 1
    library.stop_webhook_receiver("dlr")  # stopping twice does nothing


def test_after_stopping_the_current_receiver_the_newest_running_one_is_current(library: WebhookLibrary) -> None:
    dlr_url = library.start_webhook_receiver("dlr")
    library.start_webhook_receiver("cdr")

    library.stop_webhook_receiver()

    assert library.get_webhook_receiver_url() == dlr_url


def test_a_fixed_port_is_reusable_after_stop(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver()
    port = int(url.split(":")[2].rstrip("/"))
    library.stop_webhook_receiver()

    assert library.start_webhook_receiver(port=port) == url


def test_unknown_alias_names_the_started_receivers(library: WebhookLibrary) -> None:
    with pytest.raises(ReceiverNotFoundError) as nothing_started:
        library.get_webhook_requests()
    assert str(nothing_started.value) == "No webhook receiver is started. Use `Start Webhook Receiver` first."

    dlr_url = library.start_webhook_receiver("dlr")
    cdr_url = library.start_webhook_receiver("cdr")
    library.stop_webhook_receiver("cdr")

    with pytest.raises(ReceiverNotFoundError) as failure:
        library.wait_until_webhook_received("mo")
    assert str(failure.value) == (
        f"No webhook receiver has alias 'mo'. Started receivers: 'dlr' ({dlr_url}), 'cdr' ({cdr_url}, stopped)."
    )
    assert isinstance(failure.value, ValueError)
    assert library.get_webhook_receiver_url("D L R") == dlr_url


def test_starting_a_running_alias_or_a_taken_port_fails_clearly(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver("dlr")
    port = int(url.split(":")[2].rstrip("/"))

    with pytest.raises(ReceiverStartError, match=rf"^Webhook receiver 'dlr' is already running at {url}\. "):
        library.start_webhook_receiver("dlr")
    with pytest.raises(ReceiverStartError, match=rf"^Cannot listen on 127.0.0.1:{port} for webhook receiver 'other'"):
        library.start_webhook_receiver("other", port=port)


def test_requests_outside_the_base_path_get_404_and_are_mentioned(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver(path="/dlr/")

    response = requests.post(url.replace("/dlr/", "/mo"), data={"id": "m-9"}, timeout=5)

    assert response.status_code == 404
    assert library.get_webhook_requests() == []
    with pytest.raises(AssertionError, match="1 outside the base path, answered 404: POST /mo"):
        library.wait_until_webhook_received(timeout=timedelta(0))


def test_set_webhook_response_fails_the_next_requests_then_acknowledges_again(library: WebhookLibrary) -> None:
    url = library.start_webhook_receiver()

    library.set_webhook_response(500, "busy", count=2)
    answers = [requests.post(url, data={"id": "m-10"}, timeout=5) for _ in range(3)]

    assert [(a.status_code, a.text) for a in answers] == [(500, "busy"), (500, "busy"), (200, "ACK/Jasmin")]
    assert [r.response_status for r in library.get_webhook_requests()] == [500, 500, 200]


def test_set_webhook_response_delay_makes_the_receiver_slow(
    library: WebhookLibrary, robot_log: pytest.LogCaptureFixture
) -> None:
    url = library.start_webhook_receiver()
    library.set_webhook_response(204, "", delay=timedelta(milliseconds=200))

    with pytest.raises(requests.Timeout):
        requests.post(url, data={"id": "slow"}, timeout=0.05)
    assert library.wait_until_webhook_received(id="slow")["response_status"] == 204
    time.sleep(0.3)  # let the delayed answer meet the closed connection
    library.get_webhook_requests()
    assert [message for _, level, message in logged(robot_log) if level == "WARNING"] == []
    with pytest.raises(ValueError, match="Response status 99 is not an HTTP status"):
        library.set_webhook_response(99)


def test_credential_headers_are_masked_but_can_be_filtered_on(
    library: WebhookLibrary, robot_log: pytest.LogCaptureFixture
) -> None:
    url = library.start_webhook_receiver()
    secret_headers = {"Authorization": "Bearer s3cret", "X-API-Key": "k3y", "X-Trace": "t-1"}

    requests.post(url, json={"id": "m-11"}, headers=secret_headers, timeout=5)
    found = library.wait_until_webhook_received(headers={"authorization": "Bearer s3cret"}, id="m-11")

    assert found.headers["Authorization"] == found.headers["X-API-Key"] == "***"
    assert found.headers["X-Trace"] == "t-1"
    assert any("Authorization: ***" in message for _, level, message in logged(robot_log) if level == "DEBUG")
    assert not any("s3cret" in message or "k3y" in message for _, _, message in logged(robot_log))
    with pytest.raises(AssertionError, match=r"with header authorization='\*\*\*' and id='m-11'"):
        library.wait_until_webhook_received(timeout=timedelta(0), headers={"authorization": "wrong"}, id="m-11")


def test_only_the_keyword_thread_logs(library: WebhookLibrary, robot_log: pytest.LogCaptureFixture) -> None:
    url = library.start_webhook_receiver()
    with ThreadPoolExecutor(max_workers=5) as pool:
        list(pool.map(lambda n: requests.post(url, json={"n": n}, timeout=5), range(5)))
    library.webhook_count_should_be(5)
    library.stop_all_webhook_receivers()

    assert {thread for thread, _, _ in logged(robot_log)} == {threading.current_thread().name}


def test_stop_all_never_raises(library: WebhookLibrary, monkeypatch: pytest.MonkeyPatch) -> None:
    library.start_webhook_receiver("a")
    library.start_webhook_receiver("b")
    first = library.ctx.get("a")

    def broken_stop() -> bool:
        raise OSError("socket already gone")

    monkeypatch.setattr(first, "stop", broken_stop)
    library.stop_all_webhook_receivers()
    monkeypatch.undo()
    first.stop()

    with pytest.raises(ReceiverNotFoundError):
        library.get_webhook_requests("b")
    library.stop_all_webhook_receivers()


def test_receivers_stop_when_the_test_or_suite_that_started_them_ends(library: WebhookLibrary) -> None:
    listener = library.ROBOT_LIBRARY_LISTENER[0]
    suite, test = SimpleNamespace(id="s1"), SimpleNamespace(id="s1-t1")

    listener._start_suite(suite, None)
    suite_url = library.start_webhook_receiver("suite")
    listener._start_test(test, None)
    test_url = library.start_webhook_receiver("test")
    listener._end_test(test, None)

    with pytest.raises(requests.ConnectionError):
        requests.get(test_url, timeout=5)
    with pytest.raises(
        ReceiverNotFoundError, match=r"^No webhook receiver has alias 'test'\. Started receivers: 'suite'"
    ):
        library.get_webhook_requests("test")
    assert library.get_webhook_receiver_url() == suite_url
    assert requests.get(suite_url, timeout=5).status_code == 200
    listener._end_suite(suite, None)
    with pytest.raises(requests.ConnectionError):
        requests.get(suite_url, timeout=5)
    assert not library.ctx.receivers


def test_auto_stop_can_be_turned_off() -> None:
    library = WebhookLibrary(auto_stop=False)
    listener = library.ROBOT_LIBRARY_LISTENER[0]
    test = SimpleNamespace(id="s1-t1")
    listener._start_test(test, None)
    library.start_webhook_receiver()
    listener._end_test(test, None)

    assert library.ctx.get().running
    listener._close()
    assert not library.ctx.receivers


def test_ipv6_loopback(library: WebhookLibrary) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        url = library.start_webhook_receiver(host="::1")
    except ReceiverStartError:
        pytest.skip("IPv6 loopback unavailable")

    assert url.startswith("http://[::1]:")
    requests.post(url, json={"id": "v6"}, timeout=5)
    assert library.wait_until_webhook_received(id="v6")["client"].startswith("::1:")
