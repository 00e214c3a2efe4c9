"""koderz: config-driven experiment runner for code-generation models."""

import time

__version__ = "0.1.0"

# when koderz was first imported in this process: wall clock and the CPU time spent so far
# (``koderz.timing.interpreter_start`` finds the interpreter's start from them)
IMPORTED = (time.time(), time.process_time())
