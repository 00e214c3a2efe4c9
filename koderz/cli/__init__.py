"""The command line: the Hydra app, the checks of a composed config, and one-line errors."""
