"""How long one call to DynamoDB, EventBridge or Secrets Manager may take, retries included.

botocore's defaults (60 s to connect, 60 s to read, 3 attempts) let one hung call outlast every
function's timeout: the ingestion then dies with API Gateway's bare 502 instead of answering 503,
and the orchestrator times out after paying for the model, to be retried and pay again. These
services answer in milliseconds; a call that has not in seconds is better failed and retried by
whoever retries (the client on a 503, the event source) than waited on.
"""

from __future__ import annotations

from typing import Any

AWS_CONNECT_TIMEOUT_SECONDS = 1.0
AWS_READ_TIMEOUT_SECONDS = 2.0
# The first try and one retry: enough for a throttle or a dropped connection.
AWS_TOTAL_ATTEMPTS = 2
# botocore's standard mode waits up to 2**(n - 1) seconds, jittered, before retry n.
_LONGEST_BACKOFF_SECONDS = sum(2.0 ** (retry - 1) for retry in range(1, AWS_TOTAL_ATTEMPTS))

# One call, every attempt timing out: what a handler's deadline margin must leave for its last write.
AWS_CALL_WORST_CASE_SECONDS = (
    AWS_TOTAL_ATTEMPTS * (AWS_CONNECT_TIMEOUT_SECONDS + AWS_READ_TIMEOUT_SECONDS) + _LONGEST_BACKOFF_SECONDS
)


def aws_client_config() -> Any:
    """The botocore Config every default AWS client of this application is built with."""
    from botocore.config import Config

    return Config(
        connect_timeout=AWS_CONNECT_TIMEOUT_SECONDS,
        read_timeout=AWS_READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": AWS_TOTAL_ATTEMPTS},
    )
