"""Load test of `ticket-router serve` over HTTP on 127.0.0.1, bounded in count and time.

A 2,000-ticket burst from concurrent clients, then a sustained paced rate, then reconciliation:
tickets accepted = decisions stored = updates synced to the outbox. Every request goes to a
server this script starts on the loopback interface and stops itself.

    python -m bench.load [--burst 2000] [--clients 16] [--rate 25] [--seconds 20]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import percentile, ticket_stream

HOST = "127.0.0.1"
MAX_SECONDS = 300  # hard stop for the whole run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Server:
    """`ticket-router serve` in its own process, with its own store and outbox."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = _free_port()
        self.api_key = secrets.token_urlsafe(24)
        env = {
            **os.environ,
            "ROUTER_HOME": str(home),
            "ROUTER_API_KEY": self.api_key,
            "POWERTOOLS_METRICS_DISABLED": "true",
            "LOG_LEVEL": "WARNING",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "handlers.cli", "serve", "--host", HOST, "--port", str(self.port), "--threads", "8"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("ticket-router serve did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Client:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.connection = http.client.HTTPConnection(HOST, server.port, timeout=30)

    def post(self, ticket: dict[str, Any]) -> tuple[int, float]:
        body = json.dumps(ticket)
        headers = {"Content-Type": "application/json", "x-api-key": self.server.api_key}
        started = time.perf_counter()
        try:
            self.connection.request("POST", "/tickets", body=body, headers=headers)
            response = self.connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = http.client.HTTPConnection(HOST, self.server.port, timeout=30)
            status = 0
        return status, (time.perf_counter() - started) * 1000


def _drive(server: Server, tickets: list[dict[str, Any]], clients: int, rate: float | None) -> dict[str, Any]:
    """Send every ticket once from `clients` threads; `rate` paces the total in tickets/s."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    accepted: list[str] = []
    lock = threading.Lock()
    cursor = iter(enumerate(tickets))
    started = time.perf_counter()
    hard_stop = time.monotonic() + MAX_SECONDS

    def worker() -> None:
        client = Client(server)
        while time.monotonic() < hard_stop:
            with lock:
                item = next(cursor, None)
            if item is None:
                return
            index, ticket = item
            if rate:
                wait = started + index / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            status, ms = client.post(ticket)
            with lock:
                latencies.append(ms)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 202:
                    accepted.append(ticket["ticket_id"])

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "sent": len(latencies),
        "accepted": len(accepted),
        "errors": len(latencies) - len(accepted),
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": round(elapsed, 2),
        "requests_per_second": round(len(latencies) / elapsed, 1) if elapsed else None,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "accepted_ids": accepted,
    }


def _reconcile(home: Path, accepted: set[str], timeout: float = 120) -> dict[str, Any]:
    """Wait (bounded) for routing to catch up, then compare the three ledgers."""
    db, outbox = home / "ticket-router.db", home / "outbox.jsonl"
    deadline = time.monotonic() + timeout
    stored: set[str] = set()
    synced: set[str] = set()
    drained_after = None
    started = time.monotonic()
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            stored = {row[0] for row in conn.execute("SELECT ticket_id FROM decisions")}
            failed = {row[0] for row in conn.execute("SELECT ticket_id FROM decisions WHERE sync_status = 'failed'")}
        synced = (
            {json.loads(line)["ticket_id"] for line in outbox.read_text().splitlines() if line}
            if outbox.exists()
            else set()
        )
        if accepted <= stored and accepted <= synced | failed:
            drained_after = round(time.monotonic() - started, 2)
            break
        time.sleep(0.25)
    return {
        "accepted": len(accepted),
        "decisions_stored": len(accepted & stored),
        "updates_synced": len(accepted & synced),
        "lost": len(accepted - stored),
        "unsynced": len(accepted - synced),
        "reconciled": accepted <= stored and accepted <= synced,
        "drain_seconds": drained_after,
    }


def run(burst: int = 2000, clients: int = 16, rate: float = 25.0, sustained_seconds: float = 20.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ticket-router-load-") as tmp:
        home = Path(tmp)
        server = Server(home)
        try:
            burst_tickets = ticket_stream(burst)
            burst_result = _drive(server, burst_tickets, clients, rate=None)
            sustained_count = int(rate * sustained_seconds)
            sustained_tickets = [{**t, "ticket_id": f"S-{i:06d}"} for i, t in enumerate(ticket_stream(sustained_count))]
            sustained_result = _drive(server, sustained_tickets, max(2, clients // 4), rate=rate)
            accepted = set(burst_result.pop("accepted_ids")) | set(sustained_result.pop("accepted_ids"))
            reconciliation = _reconcile(home, accepted)
        finally:
            server.stop()
    return {
        "burst": {"tickets": burst, "clients": clients, **burst_result},
        "sustained": {
            "tickets": int(rate * sustained_seconds),
            "target_rate_per_second": rate,
            "equivalent_tickets_per_day": int(rate * 86_400),
            **sustained_result,
        },
        "reconciliation": reconciliation,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rate", type=float, default=25.0, help="sustained tickets/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="sustained duration")
    args = parser.parse_args()
    result = run(args.burst, args.clients, args.rate, args.seconds)
    print(json.dumps(result, indent=2))
    if not result["reconciliation"]["reconciled"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
