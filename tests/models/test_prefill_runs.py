"""A whole ``experiment=evalplus`` run against the scripted server (a fake): an answer that
continues the prefill counts nothing; one that starts a new turn (what llama-cpp-python's server
returns) is counted in the summary, shown on the console and warned about once. The run's
prefill probe (one counting prompt) is answered as a continuing or a restarting server would."""

from __future__ import annotations

import logging

import pytest

from koderz.records import RunFolder
from koderz.report import format_summary
from tests.conftest import run_job
from tests.support.fakes.scripted_server import Rules, ScriptedServer

CODE = "def add(x: int, y: int):\n    return x + y\n"
CONTINUED = CODE + "```\n"
NEW_TURN = "Here is the function:\n\n```python\n" + CODE + "```\n"
QUIET = ("tracking=off", "cortex=off", "cache=false")


CONTINUING_PROBE = " 5, 6, 7, 8, 9, 10"
RESTARTING_PROBE = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"


async def run_against(tmp_path, answer: str, name: str, probe: str = CONTINUING_PROBE):
    async with ScriptedServer(Rules([(r"Count from 1 to 10", [probe])], default=answer)) as server:
        return await run_job(
            tmp_path / name,
            "experiment=evalplus",
            "dataset=humaneval_plus_mini",
            "model=gpt-4o-mini",
            f"model.base_url={server.openai_url}",
            "problems=[HumanEval/53]",
            *QUIET,
        )


@pytest.fixture(autouse=True)
def scripted(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-scripted")
    monkeypatch.chdir(tmp_path)


async def test_a_continued_prefill_is_not_flagged(tmp_path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="koderz.runner"):
        outcome = await run_against(tmp_path, CONTINUED, "continued")
    assert outcome.summary.prefill_ignored == 0 and outcome.summary.passed == 1
    assert outcome.summary.prefill_continued is True
    assert "PREFILL IGNORED" not in format_summary(outcome.summary, "x") and "prefill" not in caplog.text


async def test_a_new_turn_instead_of_the_continuation_is_counted_shown_and_warned_once(tmp_path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="koderz.runner"):
        outcome = await run_against(tmp_path, NEW_TURN, "restarted")
    summary = outcome.summary
    assert summary.prefill_ignored == 1 and summary.prompt == "evalplus"
    assert "PREFILL IGNORED  1 answers did not continue the prefilled answer" in format_summary(summary, "x")
    warnings = [r for r in caplog.records if "did not continue the prefilled answer" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].getMessage().startswith("prompt evalplus: ")
    (record,) = RunFolder(outcome.folder).records()
    assert record.prefill_ignored == 1 and record.outcomes[0].prefill_continued is False


async def test_a_server_that_restarts_the_probe_is_reported_at_start_even_when_answers_look_continued(
    tmp_path, caplog
) -> None:
    """A small model in a new turn may write bare code, which reads like a continuation: the probe
    still tells."""
    with caplog.at_level(logging.WARNING, logger="koderz.runner"):
        outcome = await run_against(tmp_path, CONTINUED, "probe", probe=RESTARTING_PROBE)
    summary = outcome.summary
    assert summary.prefill_continued is False and summary.prefill_ignored == 0
    assert "the server does not continue a prefilled answer (asked once at start)" in format_summary(summary, "x")
    warnings = [r.getMessage() for r in caplog.records if "does not continue a prefilled answer" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("prompt evalplus: gpt-4o-mini does not continue")
