"""`ticket-router serve` over real HTTP: the WSGI app on waitress, called with `requests`."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from waitress import create_server

from adapters.local.sqlite_repository import SqliteDecisionRepository
from domain.errors import RepositoryUnavailable
from domain.models import Ticket
from domain.ports import EngineResult
from handlers.bootstrap import LocalApp, bootstrap_local
from handlers.cli import main
from handlers.commands.serve import _remind_of_unrouted, build_wsgi_app, finish_routing
from handlers.settings import LocalSettings
from handlers.validation import MAX_BODY_BYTES
from tests.builders import ModelDown
from tests.integration.test_sqlite_repository import a_ticket_received, damage
from tests.unit.test_local_bus import LockedForAWhile, pause_after_taking_a_ticket

API_KEY = "serve-test-key-0123456789"
TICKET = {
    "ticket_id": "T-SERVE-1",
    "customer_id": "CUST-1001",
    "subject": "Fibre link down at HQ",
    "description": "Our primary fibre circuit SVC001 went down, 300 staff have no connectivity.",
    "timestamp": (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat(),
}
TIMEOUT = 5.0


@dataclass
class Served:
    url: str
    app: LocalApp
    outbox: Path

    def post(
        self, document: Any, *, key: str | None = API_KEY, path: str = "/tickets", **kwargs: Any
    ) -> requests.Response:
        headers = {"x-api-key": key} if key is not None else {}
        headers.update(kwargs.pop("headers", {}))
        if "data" not in kwargs:
            kwargs["json"] = document
        return requests.post(f"{self.url}{path}", headers=headers, timeout=TIMEOUT, **kwargs)

    def get(self, path: str, *, key: str | None = API_KEY) -> requests.Response:
        headers = {"x-api-key": key} if key is not None else {}
        return requests.get(f"{self.url}{path}", headers=headers, timeout=TIMEOUT)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    # Given the API served on a free local port, its store and outbox under tmp_path
    settings = LocalSettings(
        router_home=tmp_path,
        router_db=tmp_path / "decisions.db",
        router_outbox=tmp_path / "outbox.jsonl",
        router_api_key=API_KEY,
    )
    wsgi, app, api_key = build_wsgi_app(settings)
    assert api_key == API_KEY
    server = create_server(wsgi, host="127.0.0.1", port=0, threads=2)
    stopping = threading.Event()

    def serve() -> None:
        # server.run() would loop until its sockets vanish; closing them from this thread while
        # it sits in select() is a race, so the loop checks a flag between short polls instead.
        while not stopping.is_set():
            server.asyncore.loop(timeout=0.05, map=server._map, count=1)

    thread = threading.Thread(target=serve, name="waitress", daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.effective_port}", app, settings.outbox_path)
    finally:
        stopping.set()
        thread.join(timeout=5)
        server.close()
        server.task_dispatcher.shutdown()
        app.close()  # stops the bus worker (after delivering what was queued) and closes the store


def wait_for_decision(served: Served, ticket_id: str) -> requests.Response:
    """GET the ticket until its decision is there (routing runs on the bus worker), for at most 5 s."""
    deadline = time.monotonic() + 5.0
    while True:
        response = served.get(f"/tickets/{ticket_id}")
        if response.status_code != 404 or time.monotonic() > deadline:
            return response
        time.sleep(0.02)


@pytest.mark.parametrize("key", [None, "", "wrong-key-0123456789", API_KEY + "x", API_KEY[:-1]])
def test_a_request_without_the_right_api_key_is_forbidden(served: Served, key: str | None) -> None:
    # When a ticket is posted without the key, or with another one
    response = served.post(TICKET, key=key)
    # Then it is refused before reaching the handler, and nothing is stored
    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden"}
    assert served.get("/tickets/T-SERVE-1").status_code == 404


def test_a_posted_ticket_is_routed_stored_and_synced_to_the_outbox(served: Served) -> None:
    # When a valid ticket is posted with the key
    response = served.post(TICKET)
    # Then it is accepted at once
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["ticket_id"] == "T-SERVE-1"
    assert accepted["status"] == "accepted"
    assert response.headers["Content-Type"].startswith("application/json")

    # And its decision becomes available once the bus worker has routed it
    decision = wait_for_decision(served, "T-SERVE-1")
    assert decision.status_code == 200
    body = decision.json()
    assert (body["assigned_team"], body["priority_level"]) == ("Network Operations", "P0")
    assert body["correlation_id"] == accepted["correlation_id"]

    # And the routing update was written to the outbox, once
    served.app.bus.drain()
    entries = [json.loads(line) for line in served.outbox.read_text().splitlines()]
    assert [e["ticket_id"] for e in entries] == ["T-SERVE-1"]
    assert entries[0]["payload"]["assigned_team"] == "Network Operations"
    assert entries[0]["payload"]["correlation_id"] == accepted["correlation_id"]
    assert served.get("/tickets/T-SERVE-1").json()["sync_status"] == "success"


def test_posting_twice_routes_once(served: Served) -> None:
    first, second = served.post(TICKET), served.post(TICKET)
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["correlation_id"] == second.json()["correlation_id"]
    assert wait_for_decision(served, "T-SERVE-1").status_code == 200
    served.app.bus.drain()
    assert served.app.repository.count() == 1
    assert len(served.outbox.read_text().splitlines()) == 1


def test_a_ticket_whose_routing_failed_is_kept_and_routed_by_dlq_replay(
    served: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a ticket accepted while the model is down: routing fails on the bus worker
    served.app.engine = ModelDown()
    assert served.post(TICKET).status_code == 202
    served.app.bus.drain()
    # And the client's retry only gets the cached acceptance: nothing routes the ticket again
    assert served.post(TICKET).status_code == 202
    served.app.bus.drain()
    assert served.get("/tickets/T-SERVE-1").status_code == 404
    # When the operator replays the dead letters from another shell, as the log tells them to
    monkeypatch.setenv("ROUTER_HOME", str(served.outbox.parent))
    monkeypatch.setenv("ROUTER_DB", str(served.outbox.parent / "decisions.db"))
    monkeypatch.setenv("ROUTER_OUTBOX", str(served.outbox))
    capsys.readouterr()  # the server's own log lines
    code = main(["dlq", "replay"])
    report = json.loads(capsys.readouterr().out)
    # Then the ticket is routed, stored and pushed, and nothing is left to redeliver
    assert code == 0
    assert (report["unrouted_tickets_routed"], report["unrouted_tickets_still_failing"]) == (1, 0)
    assert served.get("/tickets/T-SERVE-1").json()["assigned_team"] == "Network Operations"
    assert [json.loads(line)["ticket_id"] for line in served.outbox.read_text().splitlines()] == ["T-SERVE-1"]
    assert served.app.repository.parked() == []
    # And a second replay has nothing to do
    capsys.readouterr()
    assert main(["dlq", "replay"]) == 0
    assert json.loads(capsys.readouterr().out)["unrouted_tickets_routed"] == 0


def test_an_invalid_ticket_is_400_naming_the_field(served: Served) -> None:
    response = served.post({"customer_id": "CUST-1001"})
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["description"]


def test_an_oversized_body_is_413(served: Served) -> None:
    # Given a body just over the limit
    payload = json.dumps({**TICKET, "description": "x" * (MAX_BODY_BYTES + 1)})
    # When it is posted
    response = served.post(None, data=payload, headers={"Content-Type": "application/json"})
    # Then it is refused for its size and nothing is stored
    assert response.status_code == 413
    assert str(MAX_BODY_BYTES) in response.json()["message"]
    assert served.app.repository.count() == 0


def test_a_body_that_is_not_json_is_415(served: Served) -> None:
    response = served.post(None, data=json.dumps(TICKET), headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert "application/json" in response.json()["message"]


def test_a_ticket_id_in_the_path_is_read_as_utf8_like_api_gateway_does(served: Served) -> None:
    # When a path holds a non-ASCII id (sent percent-encoded UTF-8, as every client does)
    response = served.get("/tickets/T-%C3%A9t%C3%A9")
    # Then the error quotes it as the client wrote it, not as Latin-1 mojibake
    assert response.status_code == 400
    assert "'T-\u00e9t\u00e9'" in response.json()["message"]


def test_a_body_that_is_not_utf8_is_400(served: Served) -> None:
    raw = b'{"customer_id": "CUST-1001", "description": "caf\xe9"}'
    response = served.post(None, data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "UTF-8" in response.json()["message"]


@pytest.mark.parametrize("path", ["//x/tickets", "//tickets"])
def test_a_path_that_starts_with_two_slashes_is_not_read_as_another_route(served: Served, path: str) -> None:
    # When a ticket is posted to a path that only ends like /tickets
    response = served.post(TICKET, path=path)
    # Then no route takes it: it is not accepted, and the answer names the path as sent
    assert response.status_code == 404
    assert response.json() == {"message": f"no route for POST {path}"}
    assert served.get("/tickets/T-SERVE-1").status_code == 404


def test_unknown_ticket_and_unknown_route_are_404(served: Served) -> None:
    assert served.get("/tickets/T-NOPE").status_code == 404
    assert served.get("/no/such/route").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/tickets/T-SERVE-1", "GET, HEAD"),
        ("PUT", "/tickets/T-SERVE-1", "GET, HEAD"),
        ("GET", "/tickets", "POST"),
        ("HEAD", "/tickets/T-SERVE-1/feedback", "POST"),
        ("POST", "/health", "GET, HEAD"),
    ],
)
def test_a_method_a_route_does_not_answer_is_405_naming_those_it_does(
    served: Served, method: str, path: str, allowed: str
) -> None:
    # When a route that exists is asked with a method it does not answer
    response = requests.request(method, f"{served.url}{path}", headers={"x-api-key": API_KEY}, timeout=TIMEOUT)
    # Then the answer says the method is wrong, and which are right, not that there is no such route
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    if method != "HEAD":
        assert response.json()["message"] == f"{method} is not allowed on {path}; allowed: {allowed}"


def test_head_on_a_get_route_answers_as_get_without_a_body(served: Served) -> None:
    # When /health is asked with HEAD, as a monitoring probe does
    response = requests.head(f"{served.url}/health", headers={"x-api-key": API_KEY}, timeout=TIMEOUT)
    # Then it answers as GET does, with the length of the body it leaves out
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["Content-Length"]) == len(served.get("/health").content)


def test_health_answers_with_the_key(served: Served) -> None:
    response = served.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_a_head_request_is_answered_with_headers_only_so_the_connection_stays_usable(served: Served) -> None:
    # Given one kept-alive connection that asks HEAD /health, then GET /health
    host, port = served.url.removeprefix("http://").split(":")
    key = f"x-api-key: {API_KEY}\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as connection:
        connection.sendall(b"HEAD /health HTTP/1.1\r\nHost: x\r\n" + key + b"\r\n")
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + key + b"\r\n")
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    # Then the answer to HEAD ends with its headers, and the next bytes are the GET's own answer
    head_answer, _, rest = received.partition(b"\r\n\r\n")
    assert head_answer.startswith(b"HTTP/1.1 ")
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["status"] == "ok"


def test_the_openapi_document_is_served_without_a_key(served: Served) -> None:
    # When the OpenAPI document is fetched without a key
    response = served.get("/openapi.json", key=None)
    # Then it describes the ticket API
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert "/tickets" in document["paths"]
    assert "post" in document["paths"]["/tickets"]


@pytest.mark.parametrize(
    ("option", "value"),
    [("--port", "-1"), ("--port", "99999"), ("--port", "http"), ("--threads", "0")],
)
def test_a_port_or_thread_count_out_of_range_is_refused(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When serve is started with a port no socket can have, or no thread to answer requests
    with pytest.raises(SystemExit) as exc:
        main(["serve", option, value])
    # Then it stops at the argument, naming it, before listening anywhere
    assert exc.value.code == 2
    assert f"argument {option}" in capsys.readouterr().err


@pytest.fixture
def local_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path))
    monkeypatch.setenv("ROUTER_API_KEY", API_KEY)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    for name in ("ROUTER_DB", "ROUTER_OUTBOX"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_a_port_in_use_is_one_clear_error(local_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a port another process listens on
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # When serve is started on it
        code = main(["serve", "--port", str(port)])
    # Then it fails in one line saying why
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"ticket-router: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_a_host_that_is_no_address_is_one_clear_error(local_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--host", "999.1.1.1", "--port", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("ticket-router: error: cannot listen on 999.1.1.1:0: ") and err.count("\n") == 1


def serve_process(home: Path, *options: str) -> subprocess.Popen[str]:
    """`ticket-router serve` as its own process, as a service manager starts it, its store under `home`."""
    env = {
        **os.environ,
        "ROUTER_HOME": str(home),
        "ROUTER_DB": str(home / "decisions.db"),
        "ROUTER_OUTBOX": str(home / "outbox.jsonl"),
        "ROUTER_API_KEY": API_KEY,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "handlers.cli", "serve", "--port", "0", *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_the_url_announced_for_an_ipv6_host_reaches_the_server(tmp_path: Path) -> None:
    # Given `ticket-router serve --host ::1`
    server = serve_process(tmp_path, "--host", "::1")
    try:
        banner = server.stdout.readline() if server.stdout else ""
        url = banner.split(" on ", 1)[1].split(" ", 1)[0]
        # When the URL it announces is called
        response = requests.get(f"{url}/health", headers={"x-api-key": API_KEY}, timeout=TIMEOUT)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    # Then it is a URL, with the address in brackets, and the server answers there
    assert url.startswith("http://[::1]:")
    assert response.status_code == 200


def test_sigterm_routes_every_accepted_ticket_before_the_server_exits(tmp_path: Path) -> None:
    # Given `ticket-router serve` running as its own process
    server = serve_process(tmp_path)
    try:
        banner = server.stdout.readline() if server.stdout else ""
        url = banner.split(" on ", 1)[1].split(" ", 1)[0]
        # And a burst of tickets, every one answered 202
        tickets = [{**TICKET, "ticket_id": f"T-TERM-{n}"} for n in range(120)]

        def post(ticket: dict[str, Any]) -> int:
            headers = {"x-api-key": API_KEY}
            return requests.post(f"{url}/tickets", json=ticket, headers=headers, timeout=TIMEOUT).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(post, tickets)) == {202}
        # When it is stopped with SIGTERM at once
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    # Then it exits cleanly, and every accepted ticket has its decision stored
    assert code == 0
    with sqlite3.connect(tmp_path / "decisions.db") as db:
        stored = {row[0] for row in db.execute("SELECT ticket_id FROM decisions")}
    assert stored == {t["ticket_id"] for t in tickets}


def test_serve_reminds_at_start_and_stop_of_tickets_left_unrouted(tmp_path: Path) -> None:
    # Given a store holding an accepted ticket whose routing failed in an earlier run
    store = SqliteDecisionRepository(tmp_path / "decisions.db")
    store.park(a_ticket_received("T-EARLIER"), "ModelUnavailable: throttled", datetime.now(UTC))
    store.close()
    # When serve starts and is stopped again
    server = serve_process(tmp_path)
    try:
        assert server.stdout is not None and server.stderr is not None
        assert " on http://" in server.stdout.readline()
        at_start = server.stderr.readline()
        server.send_signal(signal.SIGTERM)
        _, at_stop = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    # Then it says, on starting and on stopping, that the ticket waits for `dlq replay`
    db = tmp_path / "decisions.db"
    assert f"1 accepted ticket(s) left unrouted by earlier failures are kept in {db}" in at_start
    assert f"1 accepted ticket(s) unrouted are kept in {db}; `ticket-router dlq replay` routes them" in at_stop


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/tickets/T-SERVE-1", 200),
        ("/tickets/T%2DSERVE%2D1", 200),
        ("/tickets/T%252DSERVE-1", 400),
        ("/tickets/T-SERVE%2F1", 400),
    ],
    ids=["plain", "encoded", "double-encoded", "encoded-slash"],
)
def test_serve_decodes_the_ticket_id_in_the_path_once_as_lambda_does(served: Served, path: str, status: int) -> None:
    # Given a routed ticket
    assert served.post(TICKET).status_code == 202
    assert wait_for_decision(served, "T-SERVE-1").status_code == 200
    # When it is asked for under a (percent-encoded) path, then the answer is the Lambda's: decoded
    # once, so a double-encoded id or an encoded slash is an invalid id, not another ticket or route
    assert served.get(path).status_code == status


def test_a_damaged_stored_decision_is_a_500_needing_repair_not_a_busy_store(served: Served) -> None:
    # Given a routed ticket whose stored decision was then damaged
    assert served.post(TICKET).status_code == 202
    assert wait_for_decision(served, "T-SERVE-1").status_code == 200
    # (its sync recorded too: that rewrites the record, and would undo the damage done after)
    served.app.bus.drain()
    damage(served.app.repository, "decisions", "T-SERVE-1")
    # When it, or feedback on it, is asked for
    lookups = [
        served.get("/tickets/T-SERVE-1"),
        served.post({"correct_team": "Billing Support"}, path="/tickets/T-SERVE-1/feedback"),
    ]
    # Then the answer says the record needs repair, not "busy, retry shortly" (no retry would help)
    assert [r.status_code for r in lookups] == [500, 500]
    assert all("needs repair" in r.json()["message"] for r in lookups)


def test_a_locked_store_does_not_stop_the_unrouted_reminder_from_letting_serve_close(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a store another process holds locked past SQLite's busy timeout
    app = bootstrap_local(LocalSettings(router_home=tmp_path), db_path=tmp_path / "d.db")

    class LockedStore:
        path = str(tmp_path / "d.db")

        def parked_count(self) -> int:
            raise RepositoryUnavailable("database is locked")

    try:
        real, app.repository = app.repository, LockedStore()  # type: ignore[assignment]
        # When serve reminds of unrouted tickets, starting or stopping, then it goes on quietly
        _remind_of_unrouted(app, "unrouted")
    finally:
        app.repository = real
        app.close()
    assert capsys.readouterr().err == ""


def interrupted() -> None:
    raise KeyboardInterrupt


def stop_at_a_second_interrupt(app: LocalApp) -> list[str]:
    """Stop as serve does when interrupted again while routing what is queued; the tickets named lost."""
    app.bus.drain = interrupted  # type: ignore[method-assignment]
    try:
        return finish_routing(app)
    finally:
        app.close()


def test_a_ticket_routed_after_a_second_interrupt_is_not_named_lost(tmp_path: Path) -> None:
    # Given a serving runtime whose store cannot take dead letters, routing a ticket slowly
    app = bootstrap_local(LocalSettings(router_home=tmp_path), db_path=tmp_path / "d.db")
    app.bus.start_worker()
    app.bus._dead_letters = LockedForAWhile(failures=100)
    routing, fast_engine = threading.Event(), app.engine

    class SlowEngine:
        name = fast_engine.name

        def propose(self, ticket: Ticket, *, deadline: float | None = None) -> EngineResult:
            routing.set()
            time.sleep(0.5)
            return fast_engine.propose(ticket, deadline=deadline)

    app.engine = SlowEngine()
    app.submit(Ticket.model_validate({**TICKET, "timestamp": datetime.now(UTC)}))
    assert routing.wait(5)

    # When serve is interrupted a second time while that ticket is in hand
    lost = stop_at_a_second_interrupt(app)
    # Then the ticket, routed after all, is not reported lost (nor resubmitted twice by its sender)
    assert lost == []
    store = SqliteDecisionRepository(tmp_path / "d.db", create=False)
    assert store.get("T-SERVE-1") is not None
    store.close()


def test_a_ticket_taken_off_the_queue_at_a_second_interrupt_is_kept_for_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a serving runtime whose worker has just taken a ticket off the queue, and goes on with
    # it only once the stop has kept what it knew of
    taken, go_on = pause_after_taking_a_ticket(monkeypatch)
    app = bootstrap_local(LocalSettings(router_home=tmp_path), db_path=tmp_path / "d.db")
    app.bus.start_worker()
    app.submit(Ticket.model_validate({**TICKET, "timestamp": datetime.now(UTC)}))
    assert taken.wait(5)
    first_keep = app.bus.keep_unkept

    def keep_then_let_the_worker_go_on() -> list[str]:
        kept = first_keep()
        go_on.set()
        return kept

    monkeypatch.setattr(app.bus, "keep_unkept", keep_then_let_the_worker_go_on)

    # When serve is interrupted a second time in that instant
    lost = stop_at_a_second_interrupt(app)
    # Then the ticket is kept for `dlq replay`, neither lost nor routed after the stop was asked for
    store = SqliteDecisionRepository(tmp_path / "d.db", create=False)
    assert (lost, [event.ticket_id for event in store.parked()], store.get("T-SERVE-1")) == ([], ["T-SERVE-1"], None)
    store.close()


def test_a_third_interrupt_while_waiting_for_the_worker_still_names_the_lost(tmp_path: Path) -> None:
    # Given a stopping runtime whose store cannot take dead letters, with a ticket not kept
    app = bootstrap_local(LocalSettings(router_home=tmp_path), db_path=tmp_path / "d.db")
    app.bus.start_worker()
    app.bus._dead_letters = LockedForAWhile(failures=100)
    app.bus.unkept.append((a_ticket_received("T-UNKEPT"), "ModelUnavailable: throttled"))

    # When the wait for the worker is interrupted (a third Ctrl-C)
    real_stop = app.bus.stop
    app.bus.stop = interrupted  # type: ignore[method-assignment]
    try:
        lost = finish_routing(app)
    finally:
        app.bus.stop = real_stop  # type: ignore[method-assignment]
        app.close()
    # Then the stop goes on, and names the ticket that could be neither routed nor kept
    assert lost == ["T-UNKEPT"]


def test_an_oversized_body_is_refused_before_it_is_read_key_or_no_key(tmp_path: Path) -> None:
    # Given `ticket-router serve` running as its own process
    server = serve_process(tmp_path)
    try:
        banner = server.stdout.readline() if server.stdout else ""
        port = int(banner.split(" on ", 1)[1].split(" ", 1)[0].rsplit(":", 1)[1])
        # When a caller without the key announces a body of a gigabyte and sends only its headers
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as connection:
            connection.sendall(
                b"POST /tickets HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000000000\r\n\r\n"
            )
            # Then it is answered 413 at once: the server does not wait to take in (and spool to
            # disk) a body no request may have, before it even looks at the key
            status_line = connection.makefile("rb").readline()
        # And a ticket just over the limit, sent with the key, is still told the limit in JSON
        payload = json.dumps({**TICKET, "description": "x" * (MAX_BODY_BYTES + 1)})
        headers = {"x-api-key": API_KEY, "Content-Type": "application/json"}
        over = requests.post(f"http://127.0.0.1:{port}/tickets", data=payload, headers=headers, timeout=TIMEOUT)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert status_line.split(b" ", 2)[1] == b"413"
    assert over.status_code == 413 and str(MAX_BODY_BYTES) in over.json()["message"]


FIRST_REQUESTS_ON_MANY_THREADS = """
import io, sys, threading
from typing import Any

sys.setswitchinterval(1e-6)  # switch threads often, so that a race shows within a few runs

from domain.models import FeedbackSubmission, NewTicket
from handlers.local_server import ApiGatewayWsgiApp

app = ApiGatewayWsgiApp(deps=None, api_key="k" * 32)  # type: ignore[arg-type]  # a 405 never reaches them
barrier = threading.Barrier(16)
failures = []

def request(n: int) -> None:
    barrier.wait()
    try:
        if n % 2:
            statuses = []
            environ = {"REQUEST_METHOD": "DELETE", "PATH_INFO": "/tickets/T-1", "wsgi.input": io.BytesIO()}
            app(environ, lambda status, headers: statuses.append(status))
            assert statuses[0].startswith("405"), statuses
        else:
            # What the handler does with a request, under the server's lock, meanwhile
            NewTicket.model_validate({"customer_id": "C-1", "subject": "s", "description": "d"})
            FeedbackSubmission.model_validate({"correct_team": "network_operations"})
    except Exception as exc:
        failures.append(repr(exc))

threads = [threading.Thread(target=request, args=(n,)) for n in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(failures)
"""


def test_first_requests_on_many_threads_are_answered_while_models_are_first_built() -> None:
    # Given a fresh server process, whose models build their schemas on first use (`defer_build`)
    # When its first requests arrive on several threads at once: some refused with 405 (the route
    # table comes from the OpenAPI document), some validated by the handler, several rounds over
    for _ in range(10):
        run = subprocess.run(
            [sys.executable, "-c", FIRST_REQUESTS_ON_MANY_THREADS], capture_output=True, text=True, check=True
        )
        # Then every one is answered: none sees a half-built schema (pydantic's AssertionError, a 500)
        assert run.stdout.strip() == "[]", run.stdout + run.stderr
