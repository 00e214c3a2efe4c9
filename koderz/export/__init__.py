"""A finished run in other tools' formats: ``python -m koderz.export evalplus RUN_FOLDER``."""
