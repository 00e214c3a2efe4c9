"""The scripted model server (a fake) behaves as its script says, in-process and as a CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.support.fakes.scripted_server import Reply, Rules, ScriptedServer, fenced, load_script

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "tests" / "support" / "fakes" / "scripted_server.py"


def test_rules_answer_in_order_per_rule_and_the_last_reply_repeats():
    rules = Rules(rules=[("add", ["wrong", "right"])], default="fallback", faults=[{"status": 429}])
    body = {"messages": [{"role": "user", "content": "write add"}]}
    other = {"messages": [{"role": "user", "content": "hello"}]}
    assert rules(body, "openai", 0).status == 429
    assert [rules(body, "openai", i).text for i in (1, 2, 3)] == ["wrong", "right", "right"]
    assert rules(other, "ollama", 4).text == "fallback"


def test_reply_objects_reject_unknown_keys():
    with pytest.raises(ValueError, match="unknown reply keys \\['colour'\\]"):
        Reply.of({"text": "x", "colour": "red"})


def test_unknown_faults_are_refused_when_scripted():
    with pytest.raises(ValueError, match="unknown fault 'explode'"):
        Reply(fault="explode")


def test_fenced_wraps_code_in_reasoning_and_a_python_fence():
    assert fenced("x = 1\n", "Because.") == "Because.\n\n```python\nx = 1\n```\n"


def script_file(tmp_path: Path) -> Path:
    path = tmp_path / "script.json"
    path.write_text(
        json.dumps(
            {
                "models": ["gpt-4o-mini"],
                "faults": [{"status": 503, "headers": {"retry-after-ms": "1"}}],
                "rules": [
                    {"match": "spec", "reply": "THE SPEC"},
                    {"match": "add", "replies": ["wrong", {"text": "right", "output_tokens": 9}]},
                ],
                "default": "?",
            }
        )
    )
    return path


def test_json_script_form_loads_rules_and_options(tmp_path):
    rules, options = load_script(script_file(tmp_path))
    assert options == {"models": ["gpt-4o-mini"], "any_model": False, "slots": None, "latency": 0.0}
    assert rules({"messages": [{"content": "spec please"}]}, "openai", 1).text == "THE SPEC"


def test_cli_serves_a_json_script_to_the_real_openai_client(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0", "--script", str(script_file(tmp_path))],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = openai.OpenAI(api_key="k", base_url=f"{url}/v1", max_retries=2)

        def ask(text: str):
            return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

        first = ask("write add")  # the 503 fault is retried by the SDK
        second = ask("write add")
        assert (first.choices[0].message.content, second.choices[0].message.content) == ("wrong", "right")
        assert second.usage.completion_tokens == 9
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("gpt-99")
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_in_thread_server_serves_sync_callers_and_records_requests():
    with ScriptedServer(lambda body, route, i: f"call {i}").in_thread() as server:
        client = openai.OpenAI(api_key="k", base_url=server.openai_url)
        texts = [
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"q{i}"}])
            .choices[0]
            .message.content
            for i in range(2)
        ]
        client.close()
    assert texts == ["call 0", "call 1"]
    assert [r.messages[-1]["content"] for r in server.chat_requests] == ["q0", "q1"]
    assert server.hits("openai.chat") == 2
