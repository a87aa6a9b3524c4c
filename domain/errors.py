"""Domain exceptions: adapters translate infrastructure failures into these."""

from __future__ import annotations


class TicketRouterError(Exception):
    """Base of every error this application raises on purpose."""


class ConfigurationError(TicketRouterError):
    """Settings or configuration files are missing or invalid."""


class DuplicateDecision(TicketRouterError):
    """A decision for this ticket is already stored; the redelivery is a no-op."""


class RepositoryUnavailable(TicketRouterError):
    """The decision store is throttled or down; the caller should retry later."""


class DamagedRecord(TicketRouterError):
    """A stored record no longer reads as one (hand-edited, or written by an incompatible release):
    unlike an unavailable store, retrying will not help; the record needs repair."""


class PublishFailed(TicketRouterError):
    """The event bus did not accept an event."""


class EvidenceUnavailable(TicketRouterError):
    """A source of routing evidence (customer DB, service status, history) could not be reached."""


class EvidenceOutOfTime(EvidenceUnavailable):
    """A lookup given up on, or not started, because the invocation's time for lookups ran out: the
    ticket is routed without that evidence, as when its source is down."""


class ClassifierUnavailable(TicketRouterError):
    """The classifier model is missing or unreadable."""


class SyncRejected(TicketRouterError):
    """The ticketing system refused the update for good (a 4xx other than 408 and 429, or a 401/403 that a
    freshly read API key does not cure): retrying won't help."""


class SyncUnavailable(TicketRouterError):
    """The ticketing system could not be updated after every retry; the update may be replayed."""


class ModelUnavailable(TicketRouterError):
    """The reasoning model failed: throttled, erroring, timed out, or answered something unusable."""


class InvalidField(TicketRouterError, ValueError):
    """A submitted value that reads, yet cannot be taken as given (a ticket's timestamp that no
    ticket has at this moment). Raised where a ticket enters, against the caller's clock."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
