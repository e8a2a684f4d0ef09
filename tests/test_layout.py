"""The layout the README promises: imports only go down, each script's code is in apps/<its name>,
and the tests mirror the packages."""

import ast
import pathlib

import pytest

import paths

ROOT = paths.ROOT
SCRIPTS = ("train_vae.py", "train_ae.py", "compare_pca.py", "augment.py", "bench.py", "quality.py", "disentangle.py",
           "tune.py", "objective.py")
# What each package may import from the project: only what lies below it in
# apps -> {studies, course} -> lab -> explorer -> models -> nn; studies and course never import each other.
ALLOWED = {"apps": {"studies", "course", "lab", "explorer", "models", "nn"},
           "studies": {"lab", "explorer", "models", "nn"}, "course": {"lab", "explorer", "models", "nn"},
           "lab": {"explorer", "models", "nn"}, "explorer": {"models", "nn"}, "models": {"nn"}, "nn": set()}


def project_imports(path):
    """The project packages a module imports: {"lab", "nn", ...}, relative imports resolved."""
    package = path.parent.name
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [package] if node.level else [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & (ALLOWED.keys())
    return found - {package}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_only_go_down(package):
    for path in sorted((ROOT / package).glob("*.py")):
        assert project_imports(path) <= ALLOWED[package], f"{path.relative_to(ROOT)} imports {project_imports(path)}"


def test_no_application_imports_another():
    for path in sorted((ROOT / "apps").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                ["." if node.level else node.module] if isinstance(node, ast.ImportFrom) else [])
            if any(m == "." or m.split(".")[0] == "apps" for m in modules):
                pytest.fail(f"{path.relative_to(ROOT)} imports from apps/ (line {node.lineno})")


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_script_calls_the_module_of_its_own_name(script):
    tree = ast.parse((ROOT / script).read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported == [f"apps.{script.removesuffix('.py')}", "apps"], imported  # apps: requirements_missing
    assert (ROOT / "apps" / script).exists()


def test_the_layout_names_every_module_there_is():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):readme.index("## Reading the code")]
    for package in ALLOWED:
        for path in sorted((ROOT / package).glob("*.py")):
            if path.name != "__init__.py":
                assert f"  {path.name} " in layout, f"README's Layout does not name {package}/{path.name}"


@pytest.mark.parametrize("package", sorted(set(ALLOWED) - {"apps"}))
def test_each_test_file_is_named_after_a_module_of_its_package(package):
    """tests/<package>/test_<module>.py tests <package>/<module>.py: a module's tests are found by its name."""
    for path in sorted((ROOT / "tests" / package).glob("test_*.py")):
        module = path.name.removeprefix("test_")
        assert (ROOT / package / module).exists(), f"{path.relative_to(ROOT)} names no module of {package}/"


def test_no_python_module_is_over_400_lines():
    for package in ALLOWED:
        for path in sorted((ROOT / package).glob("*.py")):
            lines = len(path.read_text().splitlines())
            assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines: split it by job"
