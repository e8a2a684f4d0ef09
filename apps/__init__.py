"""The applications: one module per top-level script, named after it. None imports another.

This file imports nothing but the standard library, so that a script started with a Python
that lacks the project's requirements can still say how to set them up (`requirements_missing`).
"""

import os
import sys

PROJECT_PACKAGES = ("apps", "studies", "course", "lab", "explorer", "models", "nn")


def requirements_missing(err, script):
    """The one-line message for `err`, a ModuleNotFoundError raised while importing `script`'s
    application: which module this Python lacks, and the commands that set the project up.
    An error inside the project itself is no missing requirement: it is raised again."""
    if (err.name or "").split(".")[0] in PROJECT_PACKAGES:
        raise err
    name = os.path.basename(script)
    return (f"{name}: error: this Python ({sys.executable}) does not have {err.name}, one of the project's "
            f"requirements: run `make venv` once (it installs requirements.txt into .venv), then "
            f".venv/bin/python {name} ...; or pip install -r requirements.txt into the Python you use")
