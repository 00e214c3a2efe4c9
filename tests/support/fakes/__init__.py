"""Fakes for tests and benchmarks (named as fakes): the scripted model server."""
