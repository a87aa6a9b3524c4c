"""The composition root: the one place that turns settings into wired adapters.

Handlers and the CLI ask this module for what they need; nothing else constructs adapters.
Heavy imports (numpy, boto3, strands) stay inside the builders that need them, so a function
only pays at cold start for what it uses.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from adapters.aws.client_config import AWS_CALL_WORST_CASE_SECONDS
from adapters.clock import SystemClock
from domain.errors import (
    ConfigurationError,
    EvidenceOutOfTime,
    PublishFailed,
    RepositoryUnavailable,
    SyncUnavailable,
    TicketRouterError,
)
from domain.models import (
    DECISION_RETENTION_DAYS,
    CustomerProfile,
    PastTicket,
    ServiceStatus,
    SyncStatus,
    Ticket,
    TicketReceived,
    submitted_content,
)
from domain.ports import (
    Clock,
    CustomerDirectory,
    DecisionRepository,
    EventPublisher,
    FeedbackStore,
    IssueClassifier,
    RoutingEngine,
    ServiceStatusProvider,
    TicketHistory,
    TicketingSystem,
)
from domain.services import route_ticket, submit_ticket, sync_decision
from domain.taxonomy import Taxonomy, load_taxonomy
from handlers.settings import (
    IngestionSettings,
    LocalSettings,
    OrchestratorSettings,
    RoutingSettings,
    TicketingUpdateSettings,
    load_settings,
)

if TYPE_CHECKING:  # the local adapters are imported where they are built: Lambdas never need them
    from adapters.local.bus import InProcessEventBus
    from adapters.local.sqlite_repository import SqliteDecisionRepository

logger = logging.getLogger(__name__)
T = TypeVar("T")


def build_classifier(settings: RoutingSettings) -> IssueClassifier:
    from adapters.classifier.loader import load_classifier

    return load_classifier(settings.router_model_dir)


def build_taxonomy(settings: RoutingSettings | LocalSettings | IngestionSettings) -> Taxonomy:
    taxonomy = load_taxonomy(settings.router_taxonomy)
    if settings.router_label_team_map:
        from handlers.label_team_map import read_label_team_map

        path = settings.router_label_team_map
        taxonomy = taxonomy.with_label_teams(read_label_team_map(path), source=f"label-team map {path}")
    return taxonomy


def check_labels_routable(classifier: IssueClassifier, taxonomy: Taxonomy, settings: RoutingSettings) -> None:
    """Fail at start-up, not per ticket, when a model predicts labels the rules cannot route."""
    labels = getattr(classifier, "labels", None) or []
    unknown = [label for label in labels if taxonomy.find_category(label) is None]
    if not unknown:
        return
    shown = ", ".join(repr(u) for u in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
    if settings.router_label_team_map is None:
        raise ConfigurationError(
            f"the classifier predicts labels that are not taxonomy categories ({shown}); "
            "map them to teams with --label-team-map / ROUTER_LABEL_TEAM_MAP"
        )
    # With a map, its labels are the categories: telling the user to give the map they gave, or
    # calling the taxonomy's own categories unknown (a map used without its model), misleads.
    model = settings.router_model_dir or "the bundled telecom model"
    raise ConfigurationError(
        f"the label-team map {settings.router_label_team_map} does not map label(s) {shown} of the classifier"
        f" ({model}); add them to the map, or check that the map and the model (--model-dir / ROUTER_MODEL_DIR)"
        " go together"
    )


def build_engine(
    settings: RoutingSettings,
    *,
    taxonomy: Taxonomy,
    classifier: IssueClassifier,
    customers: CustomerDirectory,
    service_status: ServiceStatusProvider,
    history: TicketHistory,
    clock: Clock,
) -> RoutingEngine:
    from adapters.engines.pipeline import PipelineEngine
    from domain.toolkit import RoutingToolkit

    toolkit = RoutingToolkit(
        taxonomy=taxonomy,
        classifier=classifier,
        customers=customers,
        service_status=service_status,
        history=history,
        clock=clock,
        default_region=settings.router_default_region,
    )
    pipeline = PipelineEngine(toolkit)
    if settings.routing_engine == "pipeline":
        return pipeline
    from handlers.model_factory import build_model_engine

    return build_model_engine(settings, toolkit=toolkit, pipeline=pipeline)


@dataclass
class LocalApp:
    """The embedded mode: every port wired to a local adapter, the bus delivering in-process."""

    settings: LocalSettings
    taxonomy: Taxonomy
    repository: SqliteDecisionRepository
    bus: InProcessEventBus
    customers: CustomerDirectory
    ticketing: TicketingSystem
    clock: Clock
    engine: RoutingEngine

    def submit(self, ticket: Ticket, correlation_id: str | None = None) -> TicketReceived:
        return submit_ticket(ticket, customers=self.customers, publisher=self.bus, correlation_id=correlation_id)

    def use_of_id_by_another(self, ticket: Ticket) -> str | None:
        """How another ticket (another customer_id, subject or description) already holds this
        ticket's id in the store: "was routed before", "waits in it to be routed", or None."""
        earlier = self.repository.get(ticket.ticket_id)
        if earlier is not None and submitted_content(earlier) != submitted_content(ticket):
            return "was routed before"
        # A kept ticket has no decision yet: another routed under its id now would make its
        # redelivery find that decision and count it routed, and a kept one is replaced when
        # another fails under its id. Either way the first ticket would be lost without a word.
        kept = self.repository.kept(ticket.ticket_id)
        if kept is not None and submitted_content(kept) != submitted_content(ticket):
            return "waits in it to be routed (kept after a failed routing)"
        return None

    def on_ticket_received(self, event: TicketReceived) -> None:
        """Orchestrator and stream consumer in one: route, store, then sync a new decision."""
        outcome = route_ticket(
            event.to_ticket(),
            correlation_id=event.correlation_id,
            engine=self.engine,
            repository=self.repository,
            taxonomy=self.taxonomy,
            clock=self.clock,
        )
        if outcome.created:
            # Kept after an earlier failure (`route` with a model down), it is routed now: `serve`
            # and `dlq replay` must no longer count it as waiting.
            self.repository.unpark_routed(event)
        if outcome.created and outcome.decision.sync_status is SyncStatus.PENDING:
            # A SyncUnavailable is recorded as `failed` on the decision; `ticket-router dlq replay`
            # re-drives it, so the bus need not hold on to the event.
            with contextlib.suppress(SyncUnavailable):
                sync_decision(outcome.decision, ticketing=self.ticketing, repository=self.repository, clock=self.clock)

    def redeliver_parked(self, limit: int) -> Redelivery:
        """Route again the accepted tickets whose routing failed (a locked store, a model down).

        Directly, not through the bus: the result of each is needed here. A ticket routed meanwhile
        (its decision exists) is recognised by route_ticket and only leaves the queue.
        """
        redelivery = Redelivery()
        for event in self.repository.parked(limit):
            try:
                self.on_ticket_received(event)
            except Exception as exc:
                if not isinstance(exc, TicketRouterError):
                    logger.exception("redelivery failed for ticket %s", event.ticket_id)
                self.repository.park(event, f"{type(exc).__name__}: {exc}", self.clock.now())
                redelivery.still_failing.append(event.ticket_id)
            else:
                self.repository.unpark(event.ticket_id)
                redelivery.routed.append(event.ticket_id)
        return redelivery

    def close(self) -> None:
        self.bus.stop()
        self.repository.close()


@dataclass
class Redelivery:
    routed: list[str] = field(default_factory=list)
    still_failing: list[str] = field(default_factory=list)


@dataclass
class _ParkInStore:
    """The bus's dead letters, kept in the decision store so that `dlq replay` can find them."""

    repository: SqliteDecisionRepository
    clock: Clock

    def park(self, event: TicketReceived, reason: str) -> None:
        self.repository.park(event, reason, self.clock.now())
        logger.warning(
            "ticket %s is kept unrouted in %s; `ticket-router dlq replay` routes it again",
            event.ticket_id,
            self.repository.path,
        )


def bootstrap_local(
    settings: LocalSettings | None = None,
    *,
    clock: Clock | None = None,
    db_path: str | Path | None = None,
    customers_file: str | Path | None = None,
    services_file: str | Path | None = None,
    outbox_path: str | Path | None = None,
    ticketing: TicketingSystem | None = None,
    engine: RoutingEngine | None = None,
) -> LocalApp:
    from adapters.local.bus import InProcessEventBus
    from adapters.local.files import JsonCustomerDirectory, JsonServiceStatusProvider
    from adapters.local.outbox import JsonlOutbox
    from adapters.local.sqlite_repository import SqliteDecisionRepository

    settings = settings or LocalSettings()
    clock = clock or SystemClock()
    taxonomy = build_taxonomy(settings)
    repository = SqliteDecisionRepository(db_path if db_path is not None else settings.db_path)
    customers = JsonCustomerDirectory(customers_file or settings.router_customers_file)
    service_status = JsonServiceStatusProvider(services_file or settings.router_services_file)
    if engine is None:
        classifier = build_classifier(settings)
        check_labels_routable(classifier, taxonomy, settings)
        engine = build_engine(
            settings,
            taxonomy=taxonomy,
            classifier=classifier,
            customers=customers,
            service_status=service_status,
            history=repository,
            clock=clock,
        )
    bus = InProcessEventBus(dead_letters=_ParkInStore(repository, clock))
    app = LocalApp(
        settings=settings,
        taxonomy=taxonomy,
        repository=repository,
        bus=bus,
        customers=customers,
        ticketing=ticketing or JsonlOutbox(outbox_path or settings.outbox_path),
        clock=clock,
        engine=engine,
    )
    bus.subscribe(app.on_ticket_received)
    return app


# --- Lambda functions ---------------------------------------------------------------------------

# Longer than the decision is kept: a ticket_id reused within that time with another ticket is then
# refused (409) at the door, instead of accepted and dropped by the orchestrator as already routed.
# The decision's retention runs from routing, which can come days after intake (EventBridge
# retries, a replay from the 7-day archive): hence the margin.
ROUTING_DELAY_MARGIN_DAYS = 7
IDEMPOTENCY_EXPIRY_SECONDS = (DECISION_RETENTION_DAYS + ROUTING_DELAY_MARGIN_DAYS) * 86_400


# The ingestion answers before its function's time is up, or API Gateway answers a bare 502 in its
# place: publishing is started only while one AWS call's worst case (its retry included) still fits,
# and the customer lookup, which only enriches the event, gets what is left before that.
PUBLISH_RESERVE_SECONDS = AWS_CALL_WORST_CASE_SECONDS
# Between the lookup's end and the publish: a lookup given up on at the last moment must not leave
# the publish just short of its reserve.
_LOOKUP_MARGIN_SECONDS = 0.25


@dataclass
class _PublishWhileTimeLeft:
    publisher: EventPublisher
    deadline: float

    def publish_ticket_received(self, event: TicketReceived) -> None:
        if time.monotonic() + PUBLISH_RESERVE_SECONDS > self.deadline:
            raise PublishFailed(f"{event.ticket_id} not published: too little of the function's time is left")
        self.publisher.publish_ticket_received(event)


def _within(until: float | None, what: str, look_up: Callable[[], T]) -> T:
    """`look_up()`, given up on at `until` (time.monotonic(); None for no limit) with
    EvidenceOutOfTime, and not started once `until` has passed.

    The lookup runs in a thread of its own because a call under way cannot be cut short: a source
    that hangs keeps the thread, not the answer, waiting until its own timeouts end it.
    """
    if until is None:
        return look_up()
    budget = until - time.monotonic()
    if budget <= 0:
        raise EvidenceOutOfTime(f"no time left to {what}")
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(look_up())
        except BaseException as exc:  # handed to the caller, as if it had called
            outcome.append(exc)

    worker = threading.Thread(target=run, name=f"lookup: {what}"[:64], daemon=True)
    worker.start()
    worker.join(budget)
    if not outcome:
        raise EvidenceOutOfTime(f"{what}: no answer within the {budget:.1f} s left")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    result: T = outcome[0]
    return result


@dataclass
class _LookupUntil:
    """Gives up on the lookup at `until`: the ticket goes on as an unknown customer's (the
    orchestrator looks the customer up again), as when the customer DB is down."""

    directory: CustomerDirectory
    until: float

    def get_profile(self, customer_id: str) -> CustomerProfile:
        return _within(self.until, f"look up customer {customer_id}", lambda: self.directory.get_profile(customer_id))


def _time_left(deadline: float | None) -> float:
    return float("inf") if deadline is None else deadline - time.monotonic()


# When the invocation under way in this thread must be done with its calls (time.monotonic()), None
# for no limit. Read where the deadline cannot be passed down: Powertools completes or removes the
# ingestion's idempotency record with no word from us, and the orchestrator's evidence lookups sit
# behind the routing engines and the domain's toolkit.
_invocation_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("invocation_deadline", default=None)


@contextlib.contextmanager
def invocation_deadline(deadline: float | None) -> Iterator[None]:
    """Within the block, the lookups and writes that read it are held to `deadline`."""
    token = _invocation_deadline.set(deadline)
    try:
        yield
    finally:
        _invocation_deadline.reset(token)


def _record_calls_only_while_time_is_left(persistence: Any) -> None:
    """A write that comes after the publish and could outlast the function is not started: the
    client would get API Gateway's bare 502 after all. Left in progress, the record lapses with the
    invocation's time (its in-progress expiry). Of an unpublished ticket, nothing is lost and the
    503's Retry-After covers the lapse; a published one is answered 202 all the same (as when the
    write fails), its id unguarded once the record lapses."""
    save_success = persistence.save_success
    delete_record = persistence.delete_record

    def save_success_while_time_is_left(data: dict[str, Any], result: dict[str, Any]) -> None:
        if _time_left(_invocation_deadline.get()) < AWS_CALL_WORST_CASE_SECONDS:
            raise RepositoryUnavailable("no time left to complete the idempotency record")
        save_success(data=data, result=result)

    def delete_record_while_time_is_left(data: dict[str, Any], exception: Exception) -> None:
        if _time_left(_invocation_deadline.get()) < AWS_CALL_WORST_CASE_SECONDS:
            logger.warning(
                "ticket %s not published; its in-progress idempotency record is left to lapse, as no time "
                "is left to remove it",
                data.get("ticket_id"),
            )
            return
        delete_record(data=data, exception=exception)

    persistence.save_success = save_success_while_time_is_left
    persistence.delete_record = delete_record_while_time_is_left


@dataclass
class IngestionDeps:
    """What the ingestion handler needs; `accept` is the idempotent submit."""

    customers: CustomerDirectory
    publisher: EventPublisher
    decisions: DecisionRepository | None
    clock: Clock
    accept: Callable[..., dict[str, Any]]
    idempotency_config: Any = None
    feedback: FeedbackStore | None = None
    taxonomy: Taxonomy | None = None

    def register_context(self, context: Any) -> None:
        if self.idempotency_config is not None:
            self.idempotency_config.register_lambda_context(context)


def build_acceptor(
    customers: CustomerDirectory,
    publisher: EventPublisher,
    persistence: Any | None,
) -> tuple[Callable[..., dict[str, Any]], Any]:
    """submit_ticket wrapped in Powertools idempotency keyed on ticket_id.

    A second POST of the same ticket_id then returns the first answer (and correlation id)
    without publishing again, as long as it is the same ticket: a different customer, subject or
    description under a used ticket_id raises IdempotencyValidationError instead of being dropped
    (the timestamp is left out, as a retry without one is stamped anew). Each acceptor gets its own
    config: a persistence layer binds to the first config it sees.
    """

    def accept_ticket(
        ticket: dict[str, Any], receipt: list[dict[str, Any]] | None = None, deadline: float | None = None
    ) -> dict[str, Any]:
        if deadline is None:
            event = submit_ticket(Ticket.model_validate(ticket), customers=customers, publisher=publisher)
        else:
            event = submit_ticket(
                Ticket.model_validate(ticket),
                customers=_LookupUntil(customers, until=deadline - PUBLISH_RESERVE_SECONDS - _LOOKUP_MARGIN_SECONDS),
                publisher=_PublishWhileTimeLeft(publisher, deadline),
            )
        answer = {"ticket_id": event.ticket_id, "correlation_id": event.correlation_id, "status": "accepted"}
        if receipt is not None:
            receipt.append(answer)
        return answer

    if persistence is None:
        return accept_ticket, None
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyPersistenceLayerError

    config = IdempotencyConfig(
        event_key_jmespath="ticket_id",
        payload_validation_jmespath="[customer_id, subject, description]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_EXPIRY_SECONDS,
    )
    idempotent_accept = idempotent_function(
        data_keyword_argument="ticket", persistence_store=persistence, config=config
    )(accept_ticket)
    _record_calls_only_while_time_is_left(persistence)

    def accept(ticket: dict[str, Any], deadline: float | None = None) -> dict[str, Any]:
        """`deadline` (time.monotonic()): when the answer is due; None for no limit."""
        receipt: list[dict[str, Any]] = []
        deadline_set = _invocation_deadline.set(deadline)
        try:
            return idempotent_accept(ticket=ticket, receipt=receipt, deadline=deadline)
        except IdempotencyPersistenceLayerError:
            if not receipt:
                raise
            # Published, but recording the answer failed: the ticket is accepted all the same, and
            # saying otherwise would have the sender retry (or give up on) a ticket being routed.
            # One more try at completing the record: left in progress, it lapses with the Lambda's
            # time, and another ticket under this id would then be accepted and dropped as routed.
            # Not when that try could outlast the function: its answer, 202, would be lost instead.
            if _time_left(deadline) < AWS_CALL_WORST_CASE_SECONDS:
                logger.error(
                    "ticket %s accepted, but no time was left to complete its idempotency record",
                    receipt[0]["ticket_id"],
                )
                return receipt[0]
            try:
                persistence.save_success(data=ticket, result=receipt[0])
            except Exception as exc:
                logger.error(
                    "ticket %s accepted, but its idempotency record could not be completed: %s",
                    receipt[0]["ticket_id"],
                    exc,
                )
            return receipt[0]
        finally:
            _invocation_deadline.reset(deadline_set)

    return accept, config


def _http_customers(endpoint: str, timeout: float, cache_table: str | None, cache_ttl: int) -> CustomerDirectory:
    from adapters.http.customer_db import HttpCustomerDirectory

    directory: CustomerDirectory = HttpCustomerDirectory(endpoint, timeout=timeout)
    if cache_table:
        from adapters.aws.customer_cache import DynamoDBCachedCustomerDirectory

        directory = DynamoDBCachedCustomerDirectory(cache_table, directory, ttl_seconds=cache_ttl)
    return directory


def idempotency_persistence(table: str | None) -> Any:
    """Powertools' persistence layer for ingestion's idempotency records."""
    if table:
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        from adapters.aws.client_config import aws_client_config

        return DynamoDBPersistenceLayer(table_name=table, boto_config=aws_client_config())
    from adapters.local.idempotency import SqliteIdempotencyLayer

    # Without a table, duplicates are still caught within this container (the common case of a
    # quick webhook retry), never across containers: set IDEMPOTENCY_TABLE in production.
    return SqliteIdempotencyLayer(":memory:")


def build_ingestion_deps(settings: IngestionSettings | None = None) -> IngestionDeps:
    from adapters.aws.dynamodb_repository import DynamoDBDecisionRepository
    from adapters.aws.eventbridge import EventBridgePublisher

    settings = settings or load_settings(IngestionSettings)
    customers = _http_customers(
        settings.customer_db_endpoint,
        settings.http_timeout_seconds,
        settings.customer_cache_table,
        settings.customer_cache_ttl_seconds,
    )
    publisher = EventBridgePublisher(settings.eventbridge_bus_name)
    accept, config = build_acceptor(customers, publisher, idempotency_persistence(settings.idempotency_table))
    repository = (
        DynamoDBDecisionRepository(settings.routing_decisions_table) if settings.routing_decisions_table else None
    )
    return IngestionDeps(
        customers=customers,
        publisher=publisher,
        decisions=repository,
        clock=SystemClock(),
        accept=accept,
        idempotency_config=config,
        feedback=repository,
        taxonomy=build_taxonomy(settings),
    )


def _lookups_until() -> float | None:
    deadline = _invocation_deadline.get()
    return None if deadline is None else deadline - _LOOKUP_MARGIN_SECONDS


@dataclass
class _CustomersByDeadline:
    directory: CustomerDirectory

    def get_profile(self, customer_id: str) -> CustomerProfile:
        look_up = functools.partial(self.directory.get_profile, customer_id)
        return _within(_lookups_until(), f"look up customer {customer_id}", look_up)


@dataclass
class _StatusByDeadline:
    provider: ServiceStatusProvider

    def get_status(self, service_ids: Sequence[str]) -> ServiceStatus:
        return _within(_lookups_until(), "ask the service status", lambda: self.provider.get_status(service_ids))


@dataclass
class _HistoryByDeadline:
    history: TicketHistory

    def recent_for_customer(self, customer_id: str, limit: int = 5) -> list[PastTicket]:
        look_up = functools.partial(self.history.recent_for_customer, customer_id, limit)
        return _within(_lookups_until(), f"read the history of {customer_id}", look_up)


def lookups_by_invocation_deadline(
    customers: CustomerDirectory, service_status: ServiceStatusProvider, history: TicketHistory
) -> tuple[CustomerDirectory, ServiceStatusProvider, TicketHistory]:
    """The orchestrator's evidence sources, each lookup held to the `invocation_deadline` set around
    it: one not answered by then, or not started before it, is EvidenceOutOfTime, and the ticket is
    routed without that evidence, as when its source is down. Their own timeouts (a customer lookup
    through the cache and 3 x 3 s of HTTP, the status API's 9 s, a history query's 7 s) add up, one
    after the other, to more than the function's 30 s: a Lambda timeout instead of a decision."""
    return _CustomersByDeadline(customers), _StatusByDeadline(service_status), _HistoryByDeadline(history)


@dataclass
class OrchestratorDeps:
    engine: RoutingEngine
    repository: DecisionRepository
    taxonomy: Taxonomy
    clock: Clock


def build_orchestrator_deps(settings: OrchestratorSettings | None = None) -> OrchestratorDeps:
    from adapters.aws.dynamodb_repository import DynamoDBDecisionRepository
    from adapters.http.service_status import HttpServiceStatusProvider

    settings = settings or load_settings(OrchestratorSettings)
    clock = SystemClock()
    taxonomy = build_taxonomy(settings)
    repository = DynamoDBDecisionRepository(settings.routing_decisions_table)
    classifier = build_classifier(settings)
    check_labels_routable(classifier, taxonomy, settings)
    customers, service_status, history = lookups_by_invocation_deadline(
        _http_customers(
            settings.customer_db_endpoint,
            settings.http_timeout_seconds,
            settings.customer_cache_table,
            settings.customer_cache_ttl_seconds,
        ),
        HttpServiceStatusProvider(settings.service_status_endpoint, timeout=settings.http_timeout_seconds),
        repository,
    )
    engine = build_engine(
        settings,
        taxonomy=taxonomy,
        classifier=classifier,
        customers=customers,
        service_status=service_status,
        history=history,
        clock=clock,
    )
    return OrchestratorDeps(engine=engine, repository=repository, taxonomy=taxonomy, clock=clock)


@dataclass
class TicketingUpdateDeps:
    repository: DecisionRepository | None
    ticketing: TicketingSystem
    clock: Clock
    repository_for_table: Callable[[str], DecisionRepository] | None = None

    def repository_for(self, event_source_arn: str | None) -> DecisionRepository:
        """The configured repository, or the one of the table whose stream sent the record."""
        if self.repository is None:
            table = table_from_stream_arn(event_source_arn or "")
            if table is None or self.repository_for_table is None:
                raise ConfigurationError(
                    "ROUTING_DECISIONS_TABLE is not set and the record names no stream table "
                    f"(eventSourceARN {event_source_arn!r})"
                )
            self.repository = self.repository_for_table(table)
        return self.repository


def table_from_stream_arn(arn: str) -> str | None:
    """arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL -> NAME."""
    marker = ":table/"
    if marker not in arn:
        return None
    return arn.split(marker, 1)[1].split("/", 1)[0] or None


def build_ticketing_update_deps(settings: TicketingUpdateSettings | None = None) -> TicketingUpdateDeps:
    from adapters.aws.dynamodb_repository import DynamoDBDecisionRepository
    from adapters.aws.secrets import SecretsManagerApiKey
    from adapters.http.ticketing import HttpTicketingSystem

    settings = settings or load_settings(TicketingUpdateSettings)
    api_key = SecretsManagerApiKey(settings.ticketing_system_api_key_secret)
    return TicketingUpdateDeps(
        repository=(
            DynamoDBDecisionRepository(settings.routing_decisions_table) if settings.routing_decisions_table else None
        ),
        repository_for_table=DynamoDBDecisionRepository,
        ticketing=HttpTicketingSystem(
            settings.ticketing_system_endpoint,
            api_key,
            refresh_api_key=api_key.refresh,
            max_retries=settings.max_retries,
            retry_delay_base=settings.retry_delay_base,
            timeout=settings.http_timeout_seconds,
        ),
        clock=SystemClock(),
    )


# --- the same functions with local adapters (`ticket-router serve` and `invoke`) -----------------


def local_ingestion_deps(app: LocalApp) -> IngestionDeps:
    from adapters.local.idempotency import SqliteIdempotencyLayer

    persistence = SqliteIdempotencyLayer(app.repository.path)
    accept, config = build_acceptor(app.customers, app.bus, persistence)

    def accept_unless_routed_as_another(ticket: dict[str, Any], deadline: float | None = None) -> dict[str, Any]:
        # `route --db` stores decisions and kept tickets without idempotency records, so another
        # ticket under one of their ids would be answered 202 here, then one of the two dropped.
        from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError

        if (earlier := app.use_of_id_by_another(Ticket.model_validate(ticket))) is not None:
            raise IdempotencyValidationError(f"ticket {ticket['ticket_id']} {earlier} with other content")
        return accept(ticket, deadline)

    return IngestionDeps(
        customers=app.customers,
        publisher=app.bus,
        decisions=app.repository,
        clock=app.clock,
        accept=accept_unless_routed_as_another,
        idempotency_config=config,
        feedback=app.repository,
        taxonomy=app.taxonomy,
    )


def local_orchestrator_deps(app: LocalApp) -> OrchestratorDeps:
    return OrchestratorDeps(engine=app.engine, repository=app.repository, taxonomy=app.taxonomy, clock=app.clock)


def local_ticketing_update_deps(app: LocalApp) -> TicketingUpdateDeps:
    return TicketingUpdateDeps(repository=app.repository, ticketing=app.ticketing, clock=app.clock)
