"""argparse types for numbers in a range and for names: a value outside it is a usage error naming
the option, never a traceback or a quiet misreading by whatever would have received it (numpy,
scikit-learn, the socket layer, a CSV reader)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
        if number < low or (high is not None and number > high):
            raise argparse.ArgumentTypeError(_range(low, high, value, strict_low=False))
        return number

    return parse


def real_number(low: float, high: float | None = None, *, above_low: bool = False) -> Callable[[str], float]:
    """A finite number from `low` (or, with `above_low`, above it) to `high`."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
        too_low = number <= low if above_low else number < low
        if not math.isfinite(number) or too_low or (high is not None and number > high):
            raise argparse.ArgumentTypeError(_range(low, high, value, strict_low=above_low))
        return number

    return parse


def _range(low: float, high: float | None, value: str, *, strict_low: bool) -> str:
    if high is not None:
        return f"must be between {low} and {high}, not {value}"
    return f"must be above {low}, not {value}" if strict_low else f"must be {low} or more, not {value}"


def column_name(value: str) -> str:
    # An empty name would match no column, or a header cell left blank by accident.
    if not value.strip():
        raise argparse.ArgumentTypeError("a column name cannot be empty")
    return value


def non_empty(what: str) -> Callable[[str], str]:
    """A value that cannot be blank: an unset shell variable would otherwise turn the option off."""

    def parse(value: str) -> str:
        if not value.strip():
            raise argparse.ArgumentTypeError(f"{what} cannot be empty")
        return value

    return parse


def path_argument(value: str) -> Path:
    # Path("") is ".": an empty value (an unset shell variable) would silently mean this directory,
    # and SQLite would open a throwaway database for an empty --db.
    if not value.strip():
        raise argparse.ArgumentTypeError("a path cannot be empty")
    return Path(value)


def output_path_argument(value: str) -> Path:
    # "-" is standard output, as for most command-line tools; written as a stream, never replaced.
    return Path("/dev/stdout") if value == "-" else path_argument(value)
