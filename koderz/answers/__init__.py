"""Answers as plain values: their wire encoding, how they compare with the reference, the check's namespace.

A leaf package (stdlib only): both ``datasets`` (computing the ground truth) and ``sandbox`` (judging
attempts) use it; it imports neither.
"""
