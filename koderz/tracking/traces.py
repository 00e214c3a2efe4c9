"""One MLflow trace per problem, written in batches: the spans of many traces in one transaction.

MLflow's tracing SDK exports every span on its own (a store transaction each) and every trace
once more (``start_trace``); for finished problems whose spans are already known that is ~35 ms
of CPU per trace. Here a batch of traces is built from their ``TraceRecord`` as MLflow ``Span``
entities and written with one ``log_spans`` call (the store groups the spans by trace in one
session and takes each trace's state from its root span, its tags from the root span's
``mlflow.traceTag.*`` attributes) and one ``link_traces_to_run`` call per 100 traces (what the
run page's Traces tab and ``search_traces(run_id=...)`` find). Trace ids are derived from the
run and the problem, so writing a batch again (after a crash between writing and saving
progress) replaces its traces instead of adding copies.

``TracingClient.log_spans`` is the call MLflow's own span exporter makes; pyproject.toml pins
the mlflow range that has it, and tests/tracking checks the traces through the public
``search_traces``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from koderz.records import ProblemRecord, TraceRecord
from koderz.records import Span as SpanRecord
from koderz.tracking.names import Tag
from koderz.vocab import Category, Mode, Phase

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Span

INPUT_KEYS = ("prompt",)
OUTPUT_KEYS = ("answer", "status", "tests_passed", "tests_total", "failing_input", "error", "finish_reason")
OUTCOME_KEYS = {"passed", "attempts", "solved_at", "status", "tests_passed", "tests_total", "error"}
TAG_PREFIX = "mlflow.traceTag."  # root-span attributes the store turns into trace tags
MAX_LINKS = 100  # traces per link_traces_to_run call (MLflow's limit)


def trace_name(trace: TraceRecord) -> str:
    return trace.task_id if trace.mode is Mode.ZERO_SHOT else f"{trace.task_id} ({trace.mode.value})"


def trace_id(run_key: str, trace: TraceRecord, finished_at: float) -> str:
    """MLflow's ``tr-<32 hex>`` id, the same every time for this run's problem and its record."""
    return "tr-" + _digest(run_key, trace.mode.value, trace.task_id, repr(finished_at))[:32]


def build_trace(
    trace: TraceRecord, record: ProblemRecord | None, *, run_key: str, finished_at: float
) -> tuple[str, list[Span]]:
    """The id and spans of one problem's trace: a root span and one child per recorded phase span."""
    from mlflow.entities import Span

    tid = trace_id(run_key, trace, finished_at)
    otel_trace = _b64(bytes.fromhex(tid[3:]))
    root_id = _span_id(tid, "root")
    inputs = {"task_id": trace.task_id, "mode": trace.mode.value}
    outputs = record.model_dump(mode="json", include=OUTCOME_KEYS) if record is not None else {"passed": trace.passed}
    phases = sorted(trace.spans, key=lambda s: s.start)
    spans = [
        _span_dict(
            otel_trace,
            root_id,
            None,
            trace_name(trace),
            trace.start,
            trace.end,
            ok=trace.passed,
            attributes={"mlflow.traceRequestId": tid, "mlflow.spanType": "AGENT"}
            | {"mlflow.spanInputs": inputs, "mlflow.spanOutputs": outputs}
            | {"task_id": trace.task_id, "passed": trace.passed}
            | {f"{TAG_PREFIX}{key}": value for key, value in _trace_tags(trace).items()},
            events=[_event(span) for span in phases if _is_memory(span.name)],
        )
    ]
    for index, span in enumerate(phases):
        if _is_memory(span.name):
            continue
        attrs = dict(span.attributes)
        span_inputs = {k: attrs.pop(k) for k in INPUT_KEYS if k in attrs}
        span_outputs = {k: attrs.pop(k) for k in OUTPUT_KEYS if k in attrs}
        usage = _token_usage(attrs)
        if usage:
            attrs["mlflow.chat.tokenUsage"] = usage
        attrs |= {"mlflow.traceRequestId": tid, "mlflow.spanType": _span_type(span.name)}
        if span_inputs:
            attrs["mlflow.spanInputs"] = span_inputs
        if span_outputs:
            attrs["mlflow.spanOutputs"] = span_outputs
        name = f"{span.name} #{attrs['iteration']}" if "iteration" in attrs else span.name
        child = _span_id(tid, str(index))
        spans.append(_span_dict(otel_trace, child, root_id, name, span.start, span.end, ok=True, attributes=attrs))
    return tid, [Span.from_dict(d) for d in spans]


def log_traces(client: MlflowClient, experiment_id: str, run_id: str, built: Iterable[tuple[str, list[Span]]]) -> int:
    """Write the traces: all their spans in one ``log_spans`` call, then link them to the run."""
    from mlflow.tracing.client import TracingClient

    items = list(built)
    if not items:
        return 0
    TracingClient(client.tracking_uri).log_spans(experiment_id, [span for _, spans in items for span in spans])
    ids = [tid for tid, _ in items]
    for start in range(0, len(ids), MAX_LINKS):
        client.link_traces_to_run(ids[start : start + MAX_LINKS], run_id)
    return len(items)


def _trace_tags(trace: TraceRecord) -> dict[Tag, str]:
    return {
        Tag.MLFLOW_TRACE_NAME: trace_name(trace),
        Tag.TASK_ID: trace.task_id,
        Tag.MODE: trace.mode.value,
        Tag.PASSED: str(trace.passed).lower(),
        Tag.STATUS: trace.status.value,
    }


# --- internals -------------------------------------------------------------------------


def _span_dict(
    otel_trace: str,
    span_id: str,
    parent: str | None,
    name: str,
    start: float,
    end: float,
    *,
    ok: bool,
    attributes: Mapping[str, Any],
    events: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    start_ns = int(start * 1e9)
    return {
        "trace_id": otel_trace,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "start_time_unix_nano": start_ns,
        "end_time_unix_nano": max(start_ns, int(end * 1e9)),
        "events": events or [],
        "status": {"code": "STATUS_CODE_OK" if ok else "STATUS_CODE_ERROR", "message": ""},
        # MLflow keeps every attribute value JSON-encoded
        "attributes": {key: json.dumps(value, default=str) for key, value in attributes.items()},
    }


def _is_memory(name: str) -> bool:
    """A memory operation: an event of the root span (its time and duration), not a span of its
    own (with the local store it takes microseconds, and MLflow stores a span at ~1 ms of CPU)."""
    try:
        return Phase(name).category is Category.CORTEX
    except ValueError:
        return False


def _event(span: SpanRecord) -> dict[str, Any]:
    attributes = {key: value for key, value in span.attributes.items() if isinstance(value, (str, bool, int, float))}
    return {
        "name": span.name,
        "time_unix_nano": int(span.start * 1e9),
        "attributes": attributes | {"duration_ms": round((span.end - span.start) * 1000, 3)},
    }


def _span_type(name: str) -> str:
    try:
        return Phase(name).spec.span_type
    except ValueError:
        return "UNKNOWN"


def _token_usage(attrs: Mapping[str, Any]) -> dict[str, int] | None:
    inp, out = attrs.get("input_tokens"), attrs.get("output_tokens")
    if not isinstance(inp, int) or not isinstance(out, int):
        return None
    return {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _span_id(trace: str, name: str) -> str:
    return _b64(bytes.fromhex(_digest(trace, name)[:16]))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
