"""The composition root: the one place that turns settings into wired adapters.

Handlers and the CLI ask this module for what they need; nothing else constructs adapters.
Heavy imports (numpy, boto3, strands) stay inside the builders that need them, so a function
only pays at cold start for what it uses.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from adapters.clock import SystemClock
from adapters.local.bus import InProcessEventBus
from adapters.local.files import JsonCustomerDirectory, JsonServiceStatusProvider
from adapters.local.outbox import JsonlOutbox
from adapters.local.sqlite_repository import SqliteDecisionRepository
from domain.errors import SyncUnavailable
from domain.models import SyncStatus, Ticket, TicketReceived
from domain.ports import (
    Clock,
    CustomerDirectory,
    IssueClassifier,
    RoutingEngine,
    ServiceStatusProvider,
    TicketHistory,
    TicketingSystem,
)
from domain.services import route_ticket, submit_ticket, sync_decision
from domain.taxonomy import Taxonomy, load_taxonomy
from domain.toolkit import RoutingToolkit
from handlers.settings import LocalSettings, RoutingSettings


def build_classifier(settings: RoutingSettings) -> IssueClassifier:
    from adapters.classifier.loader import load_classifier

    return load_classifier(settings.router_model_dir)


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
    from adapters.engines.factory import build_model_engine

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
        if outcome.created and outcome.decision.sync_status is SyncStatus.PENDING:
            # A SyncUnavailable is recorded as `failed` on the decision; `ticket-router dlq replay`
            # re-drives it, so the bus need not hold on to the event.
            with contextlib.suppress(SyncUnavailable):
                sync_decision(outcome.decision, ticketing=self.ticketing, repository=self.repository, clock=self.clock)

    def close(self) -> None:
        self.bus.stop()
        self.repository.close()


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
    settings = settings or LocalSettings()
    clock = clock or SystemClock()
    taxonomy = load_taxonomy(settings.router_taxonomy)
    repository = SqliteDecisionRepository(db_path if db_path is not None else settings.db_path)
    customers = JsonCustomerDirectory(customers_file or settings.router_customers_file)
    service_status = JsonServiceStatusProvider(services_file or settings.router_services_file)
    if engine is None:
        engine = build_engine(
            settings,
            taxonomy=taxonomy,
            classifier=build_classifier(settings),
            customers=customers,
            service_status=service_status,
            history=repository,
            clock=clock,
        )
    bus = InProcessEventBus()
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
