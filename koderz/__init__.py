"""koderz: config-driven experiment runner for code-generation models."""

__version__ = "0.1.0"
