"""EvalPlus's sanitizer: the program ``evalplus.sanitize`` makes of a model's raw answer.

A port of ``evalplus/sanitize.py`` and ``evalplus/syncheck.py`` of evalplus 0.3.1
(https://github.com/evalplus/evalplus, Apache-2.0, (c) the EvalPlus team), so that
``prompt.protocol=evalplus`` reads an answer exactly as EvalPlus's leaderboard does without
depending on the evalplus package. It parses with the same tree-sitter grammar, so its edge cases
are EvalPlus's: the code is the longest run of lines (two or more) that ``ast`` parses, however
many markdown blocks the answer has; top-level imports are all kept; a function is kept only
when it has a ``return`` and a decorated one never (tree-sitter's ``decorated_definition``),
``from __future__`` imports are dropped; definitions the entry point does not reach are dropped,
and when nothing is left the longest parsing run is the program.

Two differences, neither changing a result: the search for the longest run skips the windows
that cannot be longer than the best found so far (EvalPlus parses every pair of lines, which takes
minutes on a long answer), and an answer that ``ast`` refuses with ``ValueError`` (a NUL byte) or
``RecursionError`` counts as not parsing, where EvalPlus's ``syntax_check`` raises.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator

import tree_sitter_python
from tree_sitter import Language, Node, Parser

CLASS_TYPE = "class_definition"
FUNCTION_TYPE = "function_definition"
IMPORT_TYPE = ("import_statement", "import_from_statement")
IDENTIFIER_TYPE = "identifier"
RETURN_TYPE = "return_statement"
EXPRESSION_TYPE = "expression_statement"
ASSIGNMENT_TYPE = "assignment"


def sanitize(code: str, entrypoint: str | None = None) -> str:
    """``evalplus.sanitize.sanitize``: the program EvalPlus judges for the answer ``code``."""
    sanitized = _target_code_or_empty(code, entrypoint).strip()
    return sanitized or code_extract(code)


def bigcodebench_sanitize(code: str, entrypoint: str) -> str:
    """``bigcodebench.sanitize.sanitize`` (bigcodebench 0.2.5, which ``bigcodebench.generate`` applies
    to a chat model's answer): EvalPlus's, except that the answer is stripped first, a function
    without ``return`` is kept, and the trailing top-level lines that name the entry point (a
    call of it) are cut together with everything after the first of them."""
    sanitized = _target_code_or_empty(code.strip(), entrypoint, need_return=False)
    lines = sanitized.splitlines()
    calls = []
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].startswith(" "):
            break
        if entrypoint in lines[index]:
            calls.append(index)
    if calls:
        sanitized = "\n".join(lines[: calls[-1]])
    return sanitized.strip() or code_extract(code)


def syntax_check(code: str) -> bool:
    """``evalplus.syncheck.syntax_check``: whether ``ast`` parses ``code``."""
    try:
        with warnings.catch_warnings(action="ignore"):  # invalid escapes in the answer's strings
            ast.parse(code)
    except (SyntaxError, MemoryError, ValueError, RecursionError):
        return False
    return True


def code_extract(text: str) -> str:
    """The first of the longest (most non-blank lines) runs of at least two lines that parse;
    the first line when none does."""
    lines = text.split("\n")
    nonblank_before = [0]
    for line in lines:
        nonblank_before.append(nonblank_before[-1] + (1 if line.strip() else 0))
    total = nonblank_before[-1]
    best, pair = 0, (0, 0)
    for i in range(len(lines)):
        if total - nonblank_before[i] <= best:
            break  # no run starting here or later has more lines than the best
        for j in range(i + 1, len(lines)):
            length = nonblank_before[j + 1] - nonblank_before[i]
            if length > best and syntax_check("\n".join(lines[i : j + 1])):
                best, pair = length, (i, j)
    return "\n".join(lines[pair[0] : pair[1] + 1])


def _target_code_or_empty(code: str, entrypoint: str | None, *, need_return: bool = True) -> str:
    """``extract_target_code_or_empty``: the imports, and the definitions the entry point reaches."""
    code = code_extract(code)
    code_bytes = code.encode("utf8")
    tree = Parser(Language(tree_sitter_python.language())).parse(code_bytes)
    class_names: set[str | None] = set()
    function_names: set[str | None] = set()
    variable_names: set[str | None] = set()
    import_nodes: list[Node] = []
    definitions: list[tuple[str | None, Node]] = []
    for child in tree.root_node.children:
        if child.type in IMPORT_TYPE:
            import_nodes.append(child)
        elif child.type == CLASS_TYPE:
            name = _definition_name(child)
            if not (name in class_names or name in variable_names or name in function_names):
                definitions.append((name, child))
                class_names.add(name)
        elif child.type == FUNCTION_TYPE:
            name = _definition_name(child)
            if not (name in function_names or name in variable_names or name in class_names) and (
                _has_return(child) or not need_return
            ):
                definitions.append((name, child))
                function_names.add(name)
        elif child.type == EXPRESSION_TYPE and child.children[0].type == ASSIGNMENT_TYPE:
            assignment = child.children[0]
            name = _definition_name(assignment)
            if not (name in variable_names or name in function_names or name in class_names):
                definitions.append((name, assignment))
                variable_names.add(name)
    reachable = _reachable(entrypoint, _dependencies(definitions)) if entrypoint else set()
    output = b""
    for node in import_nodes:
        output += code_bytes[node.start_byte : node.end_byte] + b"\n"
    for name, node in definitions:
        if entrypoint and name not in reachable:
            continue
        output += code_bytes[node.start_byte : node.end_byte] + b"\n"
    return output[:-1].decode("utf8")


def _dependencies(definitions: list[tuple[str | None, Node]]) -> dict[str | None, set[str]]:
    """Every identifier under each definition (``get_deps``)."""

    def collect(node: Node, names: set[str]) -> None:
        for child in node.children:
            if child.type == IDENTIFIER_TYPE:
                names.add(_text(child))
            else:
                collect(child, names)

    found: dict[str | None, set[str]] = {}
    for name, node in definitions:
        names: set[str] = set()
        collect(node, names)
        found[name] = names
    return found


def _reachable(entrypoint: str, graph: dict[str | None, set[str]]) -> set[str | None]:
    """The names reached from the entry point, itself included (``get_function_dependency``)."""
    queue: list[str | None] = [entrypoint]
    visited: set[str | None] = {entrypoint}
    while queue:
        current = queue.pop(0)
        for neighbour in graph.get(current, ()):
            if neighbour not in visited:
                visited.add(neighbour)
                queue.append(neighbour)
    return visited


def _definition_name(node: Node) -> str | None:
    """The first identifier child (None for ``a, b = ...``, whose target is a pattern)."""
    return next((_text(child) for child in node.children if child.type == IDENTIFIER_TYPE), None)


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf8")


def _has_return(node: Node) -> bool:
    return any(each.type == RETURN_TYPE for each in _traverse(node))


def _traverse(node: Node) -> Iterator[Node]:
    """``traverse_tree``: the nodes a tree cursor visits from ``node`` (as EvalPlus walks them)."""
    cursor = node.walk()
    depth = 0
    visited_children = False
    while True:
        if not visited_children:
            assert cursor.node is not None
            yield cursor.node
            if not cursor.goto_first_child():
                depth += 1
                visited_children = True
        elif cursor.goto_next_sibling():
            visited_children = False
        elif not cursor.goto_parent() or depth == 0:
            break
        else:
            depth -= 1
