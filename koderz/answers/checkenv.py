"""A deterministic environment for running a dataset's own ``check`` code.

HumanEval's ``check`` functions draw random test inputs (``from random import
choice``). Recording the calls from the canonical solution and replaying them against a
candidate's outputs only works when both runs draw the same numbers, so the check code
gets a private, seeded ``random`` module through its own ``__import__``; nothing global
is touched, so concurrent replays cannot disturb each other.
"""

from __future__ import annotations

import builtins
import random
import types
from typing import Any

CHECK_SEED = 1234


def _private_random(seed: int) -> types.ModuleType:
    rng = random.Random(seed)
    module = types.ModuleType("random")
    for name in dir(random):
        if name.startswith("_"):
            continue
        attr = getattr(rng, name, None)
        module.__dict__[name] = attr if callable(attr) and not isinstance(attr, type) else getattr(random, name)
    return module


def check_namespace(seed: int = CHECK_SEED) -> dict[str, Any]:
    """A fresh globals dict whose ``import random`` yields a private seeded module."""
    private = _private_random(seed)
    real_import = builtins.__import__

    def _import(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "random" and level == 0:
            return private
        return real_import(name, globals, locals, fromlist, level)

    own_builtins = dict(vars(builtins))
    own_builtins["__import__"] = _import
    return {"__builtins__": own_builtins, "__name__": "__check__"}


def preamble_of(prompt: str, entry_point: str) -> str:
    """The prompt's source before the entry point's ``def`` (imports and helpers)."""
    import ast

    try:
        tree = _parse(prompt)
    except SyntaxError:
        tree = None
    lines = prompt.splitlines(keepends=True)
    if tree is not None:
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                return "".join(lines[: first - 1])
    marker = f"def {entry_point}("
    cut = prompt.find(marker)
    return prompt[:cut] if cut >= 0 else prompt


def _parse(source: str):
    """``ast.parse`` without the SyntaxWarnings of the parsed code (e.g. invalid escapes)."""
    import ast
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source)
