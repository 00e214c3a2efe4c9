"""``python -m koderz.cortex serve|export|search|stats``: the server, and the memory for people.

    python -m koderz.cortex serve --db outputs/cortex.db [--http [HOST:]PORT] [--token-file F] [--allow-host H]
    python -m koderz.cortex export --db outputs/cortex.db [--tag T ...] [--category C] > memories.jsonl
    python -m koderz.cortex search --db outputs/cortex.db "words" [--tag T ...] [--mode recent] [--limit 10] [--json]
    python -m koderz.cortex stats --db outputs/cortex.db

``export``, ``search`` and ``stats`` read the file directly and never create or change it; they
take the server's limits. Bad input: one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import Any, TextIO

from koderz.arguments import OneLineParser
from koderz.cortex.db import MemoryDB, Order
from koderz.cortex.limits import MAX_CATEGORY, MAX_PAGE_ITEMS, MAX_QUERY, MAX_TAG, MAX_TAGS
from koderz.errors import ConfigError


def _bounded(limit: int, what: str) -> Any:
    def parse(text: str) -> str:
        if len(text) > limit:
            raise argparse.ArgumentTypeError(f"{what} of {len(text)} characters is over the limit of {limit}")
        return text

    return parse


def _page_limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE_ITEMS:
        raise argparse.ArgumentTypeError(f"--limit {text!r} is not a number from 1 to {MAX_PAGE_ITEMS}")
    return int(text)


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536 or (sep and not host):
        raise argparse.ArgumentTypeError(f"--http expects [HOST:]PORT, got {text!r}")
    return (host.strip("[]") or "127.0.0.1") if sep else "127.0.0.1", int(port)


def parser() -> argparse.ArgumentParser:
    top = OneLineParser(prog="python -m koderz.cortex", description="The Cortex experiment memory.")
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the Cortex MCP server (stdio unless --http)")
    serve.add_argument("--db", required=True, help="SQLite file (created if missing)")
    serve.add_argument(
        "--http",
        type=_address,
        metavar="[HOST:]PORT",
        help="serve streamable HTTP at http://HOST:PORT/mcp (HOST 127.0.0.1 unless given), bearer token required",
    )
    serve.add_argument("--token-file", type=Path, help="the bearer token (made 0600 on first start)")
    serve.add_argument(
        "--allow-host", action="append", default=[], help="a Host name besides loopback to answer (repeatable)"
    )
    for name, text in (
        ("export", "every matching memory as JSON lines, oldest first"),
        ("search", "memories matching words and filters"),
        ("stats", "counts of memories and sessions"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--db", required=True, help="an existing Cortex SQLite file (read only)")
        if name == "stats":
            continue
        command.add_argument("--tag", action="append", type=_bounded(MAX_TAG, "--tag"), help="must have this tag")
        command.add_argument("--category", type=_bounded(MAX_CATEGORY, "--category"))
        if name == "search":
            command.add_argument("query", nargs="?", default="", type=_bounded(MAX_QUERY, "the query"))
            command.add_argument("--mode", choices=[o.value for o in Order if o is not Order.OLDEST], default="search")
            command.add_argument("--limit", type=_page_limit, default=10)
            command.add_argument("--json", action="store_true", help="full memories as JSON lines")
    return top


def _open(path: str) -> MemoryDB:
    if not Path(path).is_file():
        raise SystemExit(f"cortex: --db {path!r} is not a file")
    try:
        return MemoryDB(path, reader=True)
    except sqlite3.Error as exc:
        raise SystemExit(f"cortex: --db {path!r} cannot be read: {exc}") from None


def _line(memory: dict[str, Any]) -> str:
    first = memory["content"].strip().splitlines()[0][:100] if memory["content"].strip() else ""
    tags = ", ".join(memory["tags"])
    return f"#{memory['id']} {memory['created_at'][:19]} {memory['category']} [{tags}] {memory['title']}\n    {first}"


def run(args: argparse.Namespace, out: TextIO) -> None:
    if args.command != "stats" and args.tag and len(args.tag) > MAX_TAGS:
        raise SystemExit(f"cortex: {len(args.tag)} --tag options, over the limit of {MAX_TAGS}")
    with closing(_open(args.db)) as db:
        if args.command == "stats":
            out.write(json.dumps(db.stats(), indent=2, ensure_ascii=False) + "\n")
        elif args.command == "export":
            for memory in db.export(args.tag, args.category):
                out.write(json.dumps(memory, ensure_ascii=False) + "\n")
        else:
            for memory in db.recall(args.query, args.tag, args.category, args.limit, args.mode):
                out.write((json.dumps(memory, ensure_ascii=False) if args.json else _line(memory)) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "serve":
        from koderz.cortex.server import serve

        try:
            serve(args.db, args.http, token_file=args.token_file, allowed_hosts=tuple(args.allow_host))
        except ConfigError as exc:
            print(f"cortex: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        run(args, sys.stdout)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0
