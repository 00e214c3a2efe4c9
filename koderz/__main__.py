"""``python -m koderz [overrides]``: the Hydra app (one run, or a sweep with ``-m``); see ``koderz.cli.app``."""

from koderz.cli.app import main

if __name__ == "__main__":
    main()
