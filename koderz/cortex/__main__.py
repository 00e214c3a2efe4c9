"""``python -m koderz.cortex serve|export|search|stats`` (see ``koderz.cortex.cli``)."""

import sys

from koderz.cortex.cli import main

if __name__ == "__main__":
    sys.exit(main())
