"""TicketingSystem over the ticketing system's REST API: PUT {endpoint}/tickets/{id}/routing."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

import requests

from adapters.http.client import HttpClient, discard_body, path_segment
from adapters.http.retry import (
    TRANSIENT_ERRORS,
    backoff_delay,
    describe_response,
    is_retryable_status,
    parse_retry_after,
)
from domain.errors import SyncRejected, SyncUnavailable, TicketRouterError
from domain.models import RoutingDecision
from domain.ticketing import routing_update_payload

logger = logging.getLogger(__name__)


SHORTEST_RETRY_SECONDS = 1.0


class HttpTicketingSystem(HttpClient):
    """Pushes a routing decision with retries.

    Every attempt carries the same `Idempotency-Key` (ticket_id:timestamp), which is what makes
    retrying a PUT whose answer was lost (timeout, dropped connection) safe.

    Retry policy: 408, 429, 5xx, connection errors and timeouts are retried up to `max_retries` times
    after the first attempt. The wait before retry n (0-based) is equal-jitter backoff around
    min(retry_delay_base * 2**n, max_delay); the Retry-After of a 429 (or 503) wins when longer. A
    Retry-After longer than `max_retry_after` is never cut short: the adapter gives up at once with
    SyncUnavailable, leaving the push to a later replay, since without a deadline (`dlq replay`) it
    would otherwise sleep as long as the server asks. With a `deadline` (a time.monotonic() value),
    no wait and no request runs past it: when the next wait would cross it the adapter gives up at
    once with SyncUnavailable, leaving the replay to the dead-letter path rather than being killed
    mid-sleep by the Lambda timeout; so it does when the wait would leave the retry less than
    SHORTEST_RETRY_SECONDS (or the timeout, if shorter).

    Other answers are final (SyncRejected), except that with `refresh_api_key` the first 401 or 403
    of a push re-reads the key past any cache: if it changed (a rotation), the request is sent again
    at once with the new key, without counting as a retry; if it did not, or the new key is refused
    too, the push is rejected. A key that cannot be re-read is SyncUnavailable.
    """

    def __init__(
        self,
        endpoint: str,
        api_key: Callable[[], str],
        *,
        refresh_api_key: Callable[[], str] | None = None,
        session: requests.Session | None = None,
        max_retries: int = 5,
        retry_delay_base: float = 1.0,
        max_delay: float = 16.0,
        max_retry_after: float = 300.0,
        timeout: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(endpoint, session=session, timeout=timeout)
        self.api_key = api_key
        self.refresh_api_key = refresh_api_key
        self.max_retries = max_retries
        self.retry_delay_base = retry_delay_base
        self.max_delay = max_delay
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._rng = rng
        self._clock = clock

    @property
    def longest_push_seconds(self) -> float:
        """How long a push can take when every attempt times out in one wait (a connection that
        never opens, an answer that never comes) and every wait between attempts is at its longest,
        short of a Retry-After that asks for more: what a caller's deadline must leave room for if
        it wants every retry to run. An attempt that waits out its connection, its answer and its
        body in turn takes longer, and the deadline then cuts the retries short."""
        waits = sum(min(self.retry_delay_base * 2**attempt, self.max_delay) for attempt in range(self.max_retries))
        return (self.max_retries + 1) * self.timeout + waits

    def push_routing(self, decision: RoutingDecision, *, deadline: float | None = None) -> None:
        ticket = decision.ticket_id
        try:
            url = f"{self.endpoint}/tickets/{path_segment(ticket)}/routing"
        except ValueError as exc:
            raise SyncRejected(f"cannot push {ticket}: {exc}") from exc
        try:
            # http.client encodes header values as Latin-1, and would raise mid-request.
            decision.idempotency_key.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise SyncRejected(f"cannot push {ticket}: its Idempotency-Key cannot be sent as an HTTP header") from exc
        payload = routing_update_payload(decision)
        api_key = self._api_key(ticket)
        headers = {
            "Authorization": f"Bearer {api_key}",
            "Idempotency-Key": decision.idempotency_key,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        key_refetched = False
        attempt = 0
        while True:
            timeout = self._request_timeout(deadline)
            if timeout is None:
                raise SyncUnavailable(f"no time left to push {ticket} after {attempt} attempt(s)")
            retry_after: float | None = None
            with self.deadline(timeout) as attempt_deadline:
                try:
                    # A redirect is not followed: requests turns a 302/303 PUT into a bodiless GET (and a
                    # 301 into a bodiless PUT), whose 200 would pass for a delivered update. The body is
                    # streamed: the status decides, and an error body is read only within the deadline.
                    response = self.session.put(
                        url,
                        json=payload,
                        headers=headers,
                        timeout=attempt_deadline.timeout(timeout),
                        allow_redirects=False,
                        stream=True,
                    )
                except TRANSIENT_ERRORS as exc:
                    cause = attempt_deadline.failure(exc)
                    failure = f"{type(cause).__name__}: {cause}"
                except requests.RequestException as exc:
                    raise SyncUnavailable(f"cannot push {ticket}: {type(exc).__name__}: {exc}") from exc
                else:
                    with response:
                        status = response.status_code
                        if 200 <= status < 300:
                            discard_body(response, deadline=attempt_deadline)
                            return
                        failure = describe_response(response, deadline=attempt_deadline)
                        if status in (401, 403) and not key_refetched and self.refresh_api_key is not None:
                            # Once per push: a key refused twice is not a stale cache, and a loop here
                            # would hammer both the secret store and the ticketing system.
                            key_refetched = True
                            fresh_key = self._refetched_api_key(self.refresh_api_key, ticket, failure)
                            if fresh_key != api_key:
                                logger.info(
                                    "push of %s refused (%s); retrying with the re-read API key", ticket, failure
                                )
                                api_key = fresh_key
                                headers["Authorization"] = f"Bearer {api_key}"
                                continue
                        if 300 <= status < 400:
                            location = response.headers.get("Location", "nowhere")
                            raise SyncRejected(
                                f"ticketing system redirected the push of {ticket} ({failure}) to {location}: "
                                "set the endpoint to the URL that takes the update"
                            )
                        if not is_retryable_status(status):
                            raise SyncRejected(f"ticketing system rejected {ticket}: {failure}")
                        if status in (429, 503):  # RFC 9110 gives Retry-After meaning on both
                            retry_after = parse_retry_after(response.headers.get("Retry-After"))

            if retry_after is not None and retry_after > self.max_retry_after:
                raise SyncUnavailable(
                    f"ticketing system asked to wait {retry_after:.0f}s before retrying {ticket}, more than "
                    f"max_retry_after {self.max_retry_after:.0f}s, after {attempt + 1} attempt(s): {failure}"
                )
            if attempt >= self.max_retries:
                raise SyncUnavailable(
                    f"ticketing system unavailable for {ticket} after {attempt + 1} attempt(s): {failure}"
                )
            delay = backoff_delay(attempt, base=self.retry_delay_base, cap=self.max_delay, rng=self._rng)
            if retry_after is not None:
                delay = max(delay, retry_after)
            if deadline is not None and self._clock() + delay + self._shortest_retry >= deadline:
                raise SyncUnavailable(
                    f"ticketing system unavailable for {ticket}: next retry in {delay:.1f}s would pass the deadline "
                    f"or leave the retry less than {self._shortest_retry:.1f}s before it, after {attempt + 1} "
                    f"attempt(s): {failure}"
                )
            logger.info("push of %s failed (%s); retry %d in %.2fs", ticket, failure, attempt + 1, delay)
            self._sleep(delay)
            attempt += 1

    def _api_key(self, ticket: str) -> str:
        try:
            return self.api_key()
        except TicketRouterError as exc:
            # Without a key nothing can be sent; recording the sync as failed lets a replay send it
            # once the secret is fixed, where a crash would only retry into the same wall.
            raise SyncUnavailable(f"no API key to push {ticket}: {exc}") from exc

    @staticmethod
    def _refetched_api_key(refresh: Callable[[], str], ticket: str, failure: str) -> str:
        try:
            return refresh()
        except TicketRouterError as exc:
            # Whether the refused key was merely stale is unknown until the secret can be read;
            # rejecting for good now could drop a decision that a replay would deliver.
            raise SyncUnavailable(f"{failure} for {ticket} and the API key could not be re-read: {exc}") from exc

    @property
    def _shortest_retry(self) -> float:
        # A third of a second each for the connection, the answer and its body: a retry given less
        # mostly fails on its own timeout, and waiting for it only spends the caller's time.
        return min(SHORTEST_RETRY_SECONDS, self.timeout)

    def _request_timeout(self, deadline: float | None) -> float | None:
        """The per-request timeout, shortened so a request never runs past the deadline: it bounds
        each of a request's three waits in turn (the connection, the answer, its body), so near the
        deadline each gets a third of the time left."""
        if deadline is None:
            return self.timeout
        remaining = deadline - self._clock()
        if remaining <= 0:
            return None
        return min(self.timeout, remaining / 3)
