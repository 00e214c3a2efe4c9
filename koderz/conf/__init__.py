"""Hydra config groups shipped with koderz (found as ``pkg://koderz.conf``)."""
