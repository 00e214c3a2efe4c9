"""koderz's tests (a regular package, so that no installed top-level ``tests`` package can shadow it)."""
