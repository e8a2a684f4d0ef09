"""The zip ships what grading imports and nothing else, and that imports with only what setup.sh installs."""

import subprocess
import sys
import zipfile

import pytest

from course import bundle
from course.points import TABLE
import paths

ROOT = str(paths.ROOT)
# Denies every top-level package but the standard library's, the grader's needs and the zip's own.
BLOCKER = """
import importlib, sys
ALLOWED = set(sys.stdlib_module_names) | {"numpy", "array_api_compat", "array_api_strict", "nn", "models", "lab",
                                          "course", "apps", "_distutils_hack"}
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in ALLOWED:
            raise ImportError(f"{name} is not installed by setup.sh")
sys.meta_path.insert(0, Blocker())
sys.path.insert(0, sys.argv[1])
for module in sys.argv[2:]:
    importlib.import_module(module)
print("imported", len(sys.argv) - 2)
"""


@pytest.mark.slow
def test_every_shipped_module_imports_with_only_what_setup_installs(tmp_path):
    files = bundle.build(ROOT, str(tmp_path / "a.zip"))
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        z.extractall(tmp_path / "source")
        assert z.read("autograder/requirements.txt").decode().split("\n")[0].startswith("numpy")
    modules = [f.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for f in files if f.endswith(".py")]
    assert set(files) - set(bundle.shipped(ROOT)) == {"setup.sh", "run_autograder", "autograder/requirements.txt",
                                                      TABLE}
    assert not [f for f in files if f.startswith(("studies/", "lab/plots", "lab/data", "tests/"))]
    done = subprocess.run([sys.executable, "-I", "-c", BLOCKER, str(tmp_path / "source"), *modules],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and f"imported {len(modules)}" in done.stdout, done.stderr[-2000:]


@pytest.mark.slow
def test_the_blocker_refuses_a_package_setup_does_not_install(tmp_path):
    done = subprocess.run([sys.executable, "-I", "-c", BLOCKER, str(tmp_path), "matplotlib"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and "not installed by setup.sh" in done.stderr
