"""``python -m koderz.cortex serve --db PATH [--http HOST:PORT]``: run the embedded Cortex server."""

from __future__ import annotations

import argparse
import sys


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"--http expects HOST:PORT, got {text!r}")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m koderz.cortex", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the Cortex MCP server (stdio unless --http)")
    serve_cmd.add_argument("--db", required=True, help="SQLite file (created if missing)")
    serve_cmd.add_argument(
        "--http",
        type=_host_port,
        metavar="HOST:PORT",
        help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio",
    )
    args = parser.parse_args(argv)

    from koderz.cortex.server import serve

    serve(args.db, args.http)
    return 0


if __name__ == "__main__":
    sys.exit(main())
