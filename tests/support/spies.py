"""Candidate programs that report what they can see (for containment tests)."""

from __future__ import annotations


def environ_spy(entry_point: str, secret: str) -> str:
    """A program whose ``entry_point`` returns ``uid=N groups=[...] env=[...] seen=K``: its own uid,
    groups and environment names, and in how many readable ``/proc/*/environ`` ``secret`` occurs."""
    return f"""
import os
def {entry_point}(*args):
    seen = 0
    for pid in os.listdir('/proc'):
        if pid.isdigit():
            try:
                with open('/proc/%s/environ' % pid, 'rb') as f:
                    seen += {secret.encode()!r} in f.read()
            except OSError:
                pass
    return 'uid=%d groups=%s env=%s seen=%d' % (os.getuid(), os.getgroups(), sorted(os.environ), seen)
"""
