"""The command line under a bad environment: one line on stderr, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from handlers.cli import EXIT_INTERNAL_ERROR, main

ROOT = Path(__file__).parents[2]


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # A fresh interpreter: the level is read when the handlers' modules are first imported.
    return subprocess.run(
        [sys.executable, "-m", "handlers.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize("variable", ["LOG_LEVEL", "POWERTOOLS_LOG_LEVEL"])
def test_an_unknown_log_level_is_named_in_one_line_even_for_help(variable: str) -> None:
    # When any command, --help included, runs with a log level that does not exist
    result = run_cli("--help", **{variable: "bogus"})
    # Then it exits with a usage error naming the variable, and no traceback
    assert result.returncode == 2
    assert result.stderr.startswith("ticket-router: error: invalid LOG_LEVEL (or POWERTOOLS_LOG_LEVEL)")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_a_log_level_in_lower_case_is_accepted_as_powertools_accepts_it(tmp_path: Path) -> None:
    # When a command that reads its settings runs with LOG_LEVEL=debug
    result = run_cli("feedback", "stats", "--db", str(tmp_path / "none.db"), LOG_LEVEL="debug")
    # Then the settings are valid and the command goes on to its own error
    assert result.stderr == f"ticket-router: error: no decision store at {tmp_path / 'none.db'}\n"


def test_a_model_price_table_that_is_not_json_is_named_in_one_line(tmp_path: Path) -> None:
    # When a command runs with MODEL_PRICES that is not JSON
    result = run_cli("feedback", "stats", "--db", str(tmp_path / "d.db"), MODEL_PRICES="{bad")
    # Then it fails naming the variable, with no traceback
    assert result.returncode == 2
    assert "MODEL_PRICES: not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bug_exits_70_with_its_trace_told_apart_from_rejected_rows(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a command with a bug in it
    def buggy(args: object) -> int:
        return {}["missing"]  # type: ignore[no-any-return]

    monkeypatch.setattr("handlers.commands.dlq.run_replay", buggy)
    # When it is run
    code = main(["dlq", "replay"])
    # Then the exit is EX_SOFTWARE, not the 1 of a run that rejected some rows, and the trace is kept
    err = capsys.readouterr().err
    assert code == EXIT_INTERNAL_ERROR == 70
    assert "KeyError: 'missing'" in err
    assert err.rstrip().endswith("ticket-router: internal error (a bug): please report it with the trace above")


@pytest.mark.parametrize(
    "argv",
    [
        ["route", "tickets.jsonl", "--db", ""],
        ["route", ""],
        ["train", "--data", "train.csv", "--label-column", "intent", "--model-dir", " "],
        ["evaluate", "--data", "test.csv", "--label-column", "intent", "--report", ""],
        ["feedback", "export", "--output", ""],
        ["invoke", "ingestion", "-e", ""],
    ],
    ids=["route-db", "route-file", "train-model-dir", "evaluate-report", "feedback-output", "invoke-event"],
)
def test_an_empty_path_is_a_usage_error_not_this_directory(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # When a path option gets an empty value (an unset shell variable), which Path() reads as "."
    with pytest.raises(SystemExit) as exited:
        main(argv)
    # Then argparse refuses it before anything is read or written
    assert exited.value.code == 2
    assert "a path cannot be empty" in capsys.readouterr().err


def test_an_empty_setting_is_unset_not_this_directory(tmp_path: Path) -> None:
    # Given a working directory, and ROUTER_HOME, ROUTER_DB and ROUTER_OUTBOX set to nothing (an
    # unset shell variable exported), which as paths would all mean "."
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "ROUTER_HOME": "", "ROUTER_DB": "", "ROUTER_OUTBOX": ""}
    tickets = ROOT / "adapters" / "local" / "sample_data" / "tickets.jsonl"
    # When tickets are routed there
    result = subprocess.run(
        [sys.executable, "-m", "handlers.cli", "route", str(tickets), "--quiet"],
        cwd=work,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    # Then the defaults apply: the outbox goes under .ticket-router/, not into the directory itself
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in work.iterdir()) == [".ticket-router"]
    assert (work / ".ticket-router" / "outbox.jsonl").is_file()


@pytest.mark.parametrize(
    ("command", "variables"),
    [
        (
            ["route"],
            [
                "ROUTING_ENGINE",
                "ROUTER_MODEL_DIR",
                "ROUTER_LABEL_TEAM_MAP",
                "ROUTER_TAXONOMY",
                "ROUTER_CUSTOMERS_FILE",
                "ROUTER_SERVICES_FILE",
                "ROUTER_OUTBOX",
            ],
        ),
        (
            ["backtest"],
            [
                "ROUTING_ENGINE",
                "ROUTER_MODEL_DIR",
                "ROUTER_LABEL_TEAM_MAP",
                "ROUTER_TAXONOMY",
                "ROUTER_CUSTOMERS_FILE",
                "ROUTER_SERVICES_FILE",
            ],
        ),
        (["feedback", "export"], ["ROUTER_DB", "ROUTER_HOME"]),
        (["feedback", "stats"], ["ROUTER_DB", "ROUTER_HOME"]),
        (["train"], ["ROUTER_HOME"]),
    ],
)
def test_help_names_the_variable_each_default_comes_from(
    command: list[str], variables: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # When a command's help is asked for
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    # Then each option whose default a variable sets names it: "default: the bundled model" would
    # hide that ROUTER_MODEL_DIR, set in the shell, is the model the command uses
    text = " ".join(capsys.readouterr().out.split())
    assert [v for v in variables if v not in text] == []


@pytest.mark.parametrize(
    ("command", "variable", "named"),
    [
        (
            ["route", str(ROOT / "adapters" / "local" / "sample_data" / "tickets.jsonl")],
            "ROUTER_HOME",
            "in ROUTER_HOME",
        ),
        (["serve", "--port", "0"], "ROUTER_HOME", "in ROUTER_HOME"),
        (["serve", "--port", "0"], "ROUTER_OUTBOX", "ROUTER_OUTBOX"),
    ],
)
def test_an_unwritable_outbox_is_named_by_the_variable_that_placed_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    variable: str,
    named: str,
) -> None:
    # Given ROUTER_HOME, or ROUTER_OUTBOX, set to a path under a file
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for name in ("ROUTER_OUTBOX", "ROUTER_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(variable, str(blocker / ("outbox.jsonl" if variable == "ROUTER_OUTBOX" else "home")))
    # When a command that writes the outbox starts
    code = main(command)
    # Then it fails naming the variable the user set, not one they never touched
    assert code == 2
    assert f"cannot write the outbox ({named}) {blocker}" in capsys.readouterr().err


# Run as `python -c`: a finder that raises KeyboardInterrupt as the first third-party module
# (pydantic, which the app's models need) is imported, as Ctrl-C does in the quarter of a second
# the app's modules take to load.
_INTERRUPTED_WHILE_LOADING = """
import runpy, sys

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "pydantic":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, CtrlC())
sys.argv = ["ticket-router", "route", "--help"]
runpy.run_module("handlers.cli", run_name="__main__")
"""


def test_an_interrupt_while_the_app_loads_exits_130_without_a_trace() -> None:
    # When Ctrl-C comes while the command line is still loading the app's modules
    result = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED_WHILE_LOADING],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    # Then it exits 130 as an interrupt during a command does, with no traceback
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
