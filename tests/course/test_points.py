"""The points table: refused when its parts are not the checks' parts; points earned per part right."""

import json
import os
import shutil

import pytest

from course import bundle, grading, points
from course.exercises import find
import paths

ROOT = str(paths.ROOT)


def test_a_table_whose_parts_are_not_the_checks_parts_is_refused_at_build(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(os.path.join(ROOT, "autograder"), project / "autograder")
    shutil.copy(os.path.join(ROOT, "requirements.txt"), project / "requirements.txt")
    table = json.loads((project / points.TABLE).read_text())
    table["exercises"]["Dense.backward"]["parts"] = {"dx": 1, "dw": 1, "db": 1}
    (project / points.TABLE).write_text(json.dumps(table))
    with pytest.raises(points.TableError, match="the parts of Dense.backward are dx, dW, db, not dx, dw, db"):
        bundle.build(str(project), str(tmp_path / "a.zip"))


def test_each_part_right_earns_its_share_and_nothing_else_does():
    table = points.load_table(os.path.join(ROOT, points.TABLE))
    dense = find("Dense.backward")
    wrong = grading.Result(dense, "wrong", {}, parts={"dx": 0.0, "dW": 0.5, "db": 1e-9})
    assert points.earned(wrong, table[dense]) == pytest.approx(10 * 2 / 3, abs=1e-3)
    for status in ("timed out", "crashed", "not started"):
        assert points.earned(grading.Result(dense, status, {}, parts={"dx": 0.0}), table[dense]) == 0
    assert points.earned(grading.Result(dense, "correct", {}), table[dense]) == 10 and table.total == 140
