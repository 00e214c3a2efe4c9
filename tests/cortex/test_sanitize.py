"""``sanitize``: any record becomes storable text within fixed bounds (pure functions)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

from koderz.cortex.limits import MAX_MEMORY_BYTES, check_memory, json_bytes
from koderz.cortex.sanitize import (
    MAX_CONTENT,
    MAX_META_DEPTH,
    MAX_META_VALUES,
    MAX_TAGS,
    clean_text,
    clean_value,
    sanitize,
)
from koderz.cortex.store import MemoryRecord


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_lone_surrogates_and_nul_become_visible_escapes() -> None:
    assert clean_text("a\udcffb\ud800c\x00d", 100) == "a\\udcffb\\ud800c\\x00d"
    assert clean_text("plain ü 😀", 100) == "plain ü 😀"  # valid text is untouched


def test_long_text_is_cut_with_a_marker_within_the_limit() -> None:
    text = clean_text("x" * 1000, 60)
    assert len(text) <= 60 and text == "x" * 33 + "… [967 more characters cut]"


def test_any_record_sanitised_fits_the_servers_limits() -> None:
    """A run's records never meet a refusal: what sanitize keeps passes the server's check."""
    control = "\x01" * (MAX_CONTENT * 2)  # 6 bytes a character as JSON
    record = MemoryRecord(
        "t" * 5000, control, tags=tuple("g" * 300 for _ in range(50)), metadata={"x": ["y" * 4000] * 64}
    )
    clean = sanitize(record)
    check_memory(asdict(clean))
    assert clean.content.endswith("more characters cut]") and json_bytes(asdict(clean)) <= MAX_MEMORY_BYTES


def test_metadata_is_reduced_to_bounded_json() -> None:
    deep: dict = {}
    node = deep
    for _ in range(MAX_META_DEPTH + 3):
        node["d"] = {}
        node = node["d"]
    value = clean_value(
        {
            "nan": math.nan,
            "big": 10**5000,
            "obj": Unprintable(),
            "set": {1},
            "deep": deep,
            "many": list(range(1000)),
            "\udcff": "\ud800",
        }
    )
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)  # would raise on NaN or a surrogate
    text.encode("utf-8")
    assert value["nan"] is None and value["big"] == "<int of 16610 bits>"
    assert value["obj"] == "<unprintable Unprintable>" and value["set"] == "{1}"
    assert len(value["many"]) == 64 and value["\\udcff"] == "\\ud800"
    assert "nested too deep" in text


def test_metadata_keeps_a_bounded_number_of_values_in_all() -> None:
    wide = {f"k{i}": {f"j{j}": [list(range(64))] * 64 for j in range(64)} for i in range(64)}  # 16M leaves
    value = clean_value(wide)
    text = json.dumps(value)

    def count(node) -> int:
        if isinstance(node, dict):
            return 1 + sum(count(v) for v in node.values())
        if isinstance(node, list):
            return 1 + sum(count(v) for v in node)
        return 1

    assert count(value) <= MAX_META_VALUES and len(text) < 100_000


def test_sanitize_bounds_every_field_and_never_raises() -> None:
    record = MemoryRecord(
        "t" * 10_000,
        "c" * (MAX_CONTENT * 2),
        category="",
        tags=tuple(f"tag{i}" for i in range(100)),
        importance=math.inf,
        metadata={"k": "v"},
    )
    clean = sanitize(record)
    assert len(clean.title) <= 300 and len(clean.content) <= MAX_CONTENT
    assert clean.category == "experiment" and len(clean.tags) == MAX_TAGS and clean.importance == 0.5
    assert clean.metadata == {"k": "v"}
    assert sanitize(MemoryRecord("t", "c", importance=7)).importance == 1.0
