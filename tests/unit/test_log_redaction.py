"""Logs never carry ticket text, phone numbers, e-mail addresses or account numbers."""

from __future__ import annotations

import io
import json
import logging
import uuid

from handlers.observability import build_logger, logs_to

SECRET_BITS = ["(415) 555-0132", "+44 7700 900123", "jane.doe@example.com", "ACC-48213", "my router is on fire"]
NATIONAL_NUMBERS = ["0151 23456789", "030 12345678", "01 42 68 53 00", "0412 345 678"]  # DE, DE, FR, AU


def test_formatter_masks_personal_data_and_drops_free_text() -> None:
    stream = io.StringIO()
    logger = build_logger(service=f"redaction-test-{uuid.uuid4().hex}", stream=stream)
    logger.info(
        "customer jane.doe@example.com called from (415) 555-0132 about ACC-48213",
        extra={
            "description": "my router is on fire",
            "subject": "fire",
            "nested": {"phone": "+44 7700 900123", "items": ["ACC-48213"]},
            "ticket_id": "T-1",
        },
    )
    line = stream.getvalue()
    for bit in SECRET_BITS:
        assert bit not in line
    record = json.loads(line)
    assert record["ticket_id"] == "T-1"
    assert record["description"] == "[redacted]"
    assert "<EMAIL_1>" in record["message"] and "<PHONE_1>" in record["message"]


def test_exceptions_are_redacted_too() -> None:
    stream = io.StringIO()
    logger = build_logger(service=f"redaction-test-{uuid.uuid4().hex}", stream=stream)
    try:
        raise ValueError("bad input from jane.doe@example.com")
    except ValueError:
        logger.exception("failed")
    assert "jane.doe@example.com" not in stream.getvalue()


def test_handler_logs_of_a_routed_ticket_hold_no_personal_data(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    from handlers.bootstrap import bootstrap_local, local_ingestion_deps
    from handlers.ingestion import lambda_handler, logger
    from handlers.local_context import LocalLambdaContext
    from handlers.settings import LocalSettings

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    app = bootstrap_local(LocalSettings(router_home=tmp_path))
    try:
        body = {
            "ticket_id": "T-PII",
            "customer_id": "C-1",
            "subject": "my router is on fire",
            "description": "Call (415) 555-0132 or jane.doe@example.com, account ACC-48213: my router is on fire",
        }
        event = {
            "httpMethod": "POST", "path": "/tickets", "resource": "/tickets",
            "headers": {"Content-Type": "application/json"}, "body": json.dumps(body), "isBase64Encoded": False,
            "requestContext": {"stage": "local"},
        }  # fmt: skip
        assert lambda_handler(event, LocalLambdaContext(), deps=local_ingestion_deps(app))["statusCode"] == 202
    finally:
        logger.removeHandler(handler)
        app.close()
    logged = stream.getvalue()
    assert "T-PII" in logged
    for bit in SECRET_BITS:
        assert bit not in logged


def test_national_numbers_of_other_regions_are_masked_too() -> None:
    # Given a log line quoting German, French and Australian numbers in national format
    stream = io.StringIO()
    logger = build_logger(service=f"redaction-test-{uuid.uuid4().hex}", stream=stream)
    # When it is written
    logger.info("callback numbers: " + ", ".join(NATIONAL_NUMBERS))
    # Then none of them is in the log
    line = stream.getvalue()
    assert all(number not in line for number in NATIONAL_NUMBERS), line


def test_card_numbers_and_secrets_are_masked_in_logs() -> None:
    # Given a log line quoting a card number and a password
    stream = io.StringIO()
    logger = build_logger(service=f"redaction-test-{uuid.uuid4().hex}", stream=stream)
    # When it is written
    logger.info("customer wrote: card 4111-1111-1111-1111, password: s3cret!")
    # Then neither is in the log
    line = stream.getvalue()
    assert "4111" not in line and "s3cret" not in line, line


def test_an_adapters_log_line_is_masked_like_the_handlers_own() -> None:
    # Given the functions' logger, built where the root logger already has a handler (the Lambda
    # runtime's, which writes records as they are)
    raw = io.StringIO()
    root_handler = logging.StreamHandler(raw)
    logging.getLogger().addHandler(root_handler)
    try:
        build_logger()
        emitted = io.StringIO()
        # When an adapter logs a customer's e-mail, phone and card number through the standard library
        with logs_to(emitted):
            logging.getLogger("adapters.aws.customer_cache").warning(
                "customer cache write failed for jane.doe@example.com, (415) 555-0132, card 4111-1111-1111-1111"
            )
    finally:
        logging.getLogger().removeHandler(root_handler)
    # Then the line is written, masked, with the handlers' own lines, and nowhere unmasked
    (line,) = emitted.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"].startswith("customer cache write failed for <EMAIL_1>")
    assert record["level"] == "WARNING"
    for bit in ("jane.doe@example.com", "(415) 555-0132", "4111"):
        assert bit not in line
    assert raw.getvalue() == ""


def test_an_adapters_line_at_the_functions_log_level_is_written() -> None:
    # Given the functions' logger, at its LOG_LEVEL (INFO as deployed)
    level = build_logger().log_level
    emitted = io.StringIO()
    # When an adapter logs at that level (the ticketing push's "retry in ..." lines are INFO)
    with logs_to(emitted):
        logging.getLogger("adapters.http.ticketing").log(level, "push of T-1 failed (HTTP 503); retry 1 in 0.50s")
    # Then it is written, as the handlers' own lines at that level are, not dropped at the root
    # logger's WARNING
    (line,) = emitted.getvalue().splitlines()
    assert json.loads(line)["message"] == "push of T-1 failed (HTTP 503); retry 1 in 0.50s"
