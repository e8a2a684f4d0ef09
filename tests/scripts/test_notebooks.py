"""The notebooks run from the first cell to the last, and are committed without outputs.

Every notebooks/*.ipynb is found by the glob, so a notebook added later is tested too. Each
is executed in a fresh python3 kernel started in notebooks/, as a student would open it,
with LAB_QUICK=1 (scikit-learn's 8x8 digits, seconds a notebook); a cell that raises fails
the test with that cell's source and error. nbclient, nbformat and ipykernel are in
requirements.txt: under CI=true their absence is a failure, elsewhere a skip.
"""

import importlib
import json
import os
import pathlib
import re

import pytest

import paths
import standin
from standin import REAL_CUPY

pytestmark = pytest.mark.slow  # every test here runs a script, a notebook or a process

ROOT = paths.ROOT
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300  # per cell; in quick mode the slowest takes a few seconds
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # IPython colours its tracebacks


def require(module):
    """Import `module`, which running a notebook needs: a failure under CI=true, a skip elsewhere."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        message = f"{module} is not installed ({err}); pip install -r requirements.txt"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the notebooks: {message}", pytrace=False)
    pytest.skip(message)


def execute(path):
    """The notebook at `path`, executed in a new python3 kernel whose working folder is the notebook's."""
    nbformat, nbclient = require("nbformat"), require("nbclient")
    require("ipykernel")  # the python3 kernel itself
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                                     resources={"metadata": {"path": str(path.parent)}})
    error = None
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:  # its text: the cell's source and traceback
        error = ANSI_COLOUR.sub("", str(err))
    if error is not None:  # failed out here, so that the report shows the cell's error once
        pytest.fail(f"{path.name}: a cell raised\n{error}", pytrace=False)
    return nb


def test_the_notebooks_are_found():
    assert {"part1_pca.ipynb", "part2_vae.ipynb", "part4_objective.ipynb"} <= {p.name for p in NOTEBOOKS}, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_from_top_to_bottom_in_quick_mode(path, monkeypatch):
    monkeypatch.setenv("LAB_QUICK", "1")  # the kernel inherits the environment; monkeypatch restores it
    # What servers and CI often set so that matplotlib never looks for a display: a notebook must
    # still draw its figures inline (its %matplotlib inline), or it shows none and says nothing.
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = execute(path)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code), "a code cell was not run"
    # A backend without a display makes plt.show() show nothing and raise nothing (lab.plots
    # once chose one for everybody): every cell that shows a figure must have an image.
    blank = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and "plt.show()" in cell.source
             and not any("image/png" in out.get("data", {}) for out in cell.outputs)]
    assert not blank, f"{path.name}: cells {blank} call plt.show() but display no figure"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_on_the_gpu_standin(path, monkeypatch):
    # A hosted notebook with a GPU: cupy_available() is true in the kernel, and every figure and
    # printed number must come to the host through to_numpy, which the stand-in enforces.
    if REAL_CUPY:
        pytest.skip("a real CuPy and GPU are here: the notebook runs on them in the test above")
    monkeypatch.setenv("LAB_QUICK", "1")
    monkeypatch.setenv("PYTHONPATH", standin.subprocess_env()["PYTHONPATH"])
    nb = execute(path)
    printed = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
    assert "backend: cupy" in printed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))  # plain JSON: needs nothing installed
    assert nb["nbformat"] == 4, f"{path.name}: nbformat {nb['nbformat']}, not 4"
    dirty = [i for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"
             and (cell["outputs"] or cell["execution_count"] is not None)]
    assert not dirty, (f"{path.name}: cells {dirty} keep outputs or execution counts; clear them before committing "
                       f"(in Jupyter: Edit > Clear Outputs of All Cells), so that a diff shows only the code")
