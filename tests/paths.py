"""Where the project is, for tests that run its scripts or read its files."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
