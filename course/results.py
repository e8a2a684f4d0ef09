"""results.json as Gradescope specifies it, written by the parent alone, always.

Every text in it is the parent's: the verdicts and tables are formatted here from numbers, and
the messages were composed by course/judge.py. A number the child computed is shown only as the
parent judges it: each part right or wrong, and its error rounded to one significant digit in
the decades 1e-16 to 1e3 (`rounded`: a few bits a part, where the float itself could carry 50).
The file is strict JSON in UTF-8: a name that is not valid UTF-8 (a folder's odd bytes) is
written with U+FFFD in place of each bad byte. `reserve` keeps room on the disk for the file
before any child runs (a child that fills the disk cannot stop the results being written);
`write_results` frees it and writes.
"""

import json
import os

import numpy as np

from nn.gradcheck import TOLERANCE

from . import grading
from .points import earned
from lab.files import atomic_write

STATUSES = ("correct", "wrong", "not started", "timed out", "crashed", "does not parse", "not submitted")
RESERVE = 8 << 20  # bytes set aside beside results.json before the children run
MAX_TEXT = 4000  # characters of one message shown


def results_json(results, table, taken, isolated, seconds):
    tests = [test_entry(r, table) for r in results]
    score = round(sum(t["score"] for t in tests), 4)
    correct = sum(r.status == "correct" for r in results)
    files = [f"{md(file)} (from {md(s.path)})" if s.text is not None else f"{md(file)}: {md(s.problem)}"
             for file, s in sorted(taken.items())]
    how = ("as a user of its own, which ends with it" if isolated else
           "as the grader's own user (it was not run as root, so nothing kept your code from the answer key)")
    output = "\n".join([
        f"**{score:g} of {table.total:g} points**: {correct} of {len(results)} exercises correct.", "",
        f"Each exercise was graded on its own: the body of your function, with the course's copy of the lab for "
        f"everything else (its tolerance, {TOLERANCE:g}, its checks and its reference solutions), in a process of "
        f"its own with a time limit, {how}; at the check's size, and at a realistic size. Nothing else of your files "
        "runs. Your files:", "", *[f"- {line}" for line in files]])
    return {"score": score, "execution_time": round(seconds), "output": output, "output_format": "md",
            "visibility": table.visibility, "stdout_visibility": "hidden",
            "extra_data": {"correct": correct, "exercises": len(results)}, "tests": tests}


def test_entry(result, table):
    e, points = result.exercise, table[result.exercise]
    score = earned(result, points)
    parts = {part: rounded(result.parts.get(part)) for part in points.parts}
    verdicts = {part: "right" if finite(result.parts.get(part)) is not None and result.parts[part] < TOLERANCE
                else "wrong" for part in points.parts}
    return {"name": f"{e.order} {e.qualname}", "number": str(e.order), "score": score, "max_score": points.points,
            "status": "passed" if result.status == "correct" else "failed", "output": markdown(result, points, score),
            "output_format": "md", "visibility": table.visibility,
            "extra_data": {"exercise": e.qualname, "status": result.status, "errors": parts, "parts": verdicts,
                           "mistake": result.mistake and result.mistake.name,
                           "message": "\n".join(m for m in (result.message, *result.diagnoses) if m)[:MAX_TEXT]}}


def finite(x):
    return float(x) if isinstance(x, (float, np.floating)) and np.isfinite(x) else None


DECADES = (-16, 3)  # the errors shown: 0 below 1e-16, 1e3 above it, else one significant digit


def rounded(x):
    """A part's error as shown: one significant digit, in DECADES; None when not finite."""
    x = finite(x)
    if x is None:
        return None
    x = abs(x)
    return 0.0 if x < 10.0 ** DECADES[0] else min(float(f"{x:.0e}"), 10.0 ** DECADES[1])


def shown(x):
    """A rounded error as text: "3e-12", "below 1e-16"."""
    x = rounded(x)
    return "below 1e-16" if x == 0 else f"{x:.0e}"


def valid_text(value):
    """`value` with every string made valid UTF-8 (a lone surrogate from a name's odd bytes becomes U+FFFD)."""
    if isinstance(value, str):
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    if isinstance(value, dict):
        return {valid_text(k): valid_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [valid_text(v) for v in value]
    return value


def md(text):
    """`text` with Markdown's and HTML's special characters escaped: shown as written."""
    return "".join("\\" + c if c in "\\`*_[]<>|#" else c for c in str(text)[:MAX_TEXT])


def markdown(result, points, score):
    """A test's output: the verdict, the worst error of each part against the tolerance, what
    went wrong, the classic mistake and its hint, and the derivation's section to read."""
    e = result.exercise
    sections = [f"**{result.status}**: {score:g} of {points.points:g} points"]
    if result.status in ("correct", "wrong") and result.parts:
        rows = ["| part | worst relative error | |", "|:--|--:|:--|"]
        for part in points.parts:
            error = result.parts.get(part, float("inf"))
            verdict = f"right (below {TOLERANCE:g})" if error < TOLERANCE else "wrong"
            rows.append(f"| {md(part)} | {shown(error)} | {verdict} |" if np.isfinite(error) else
                        f"| {md(part)} | missing, of the wrong shape, or wrong at a realistic size | wrong |")
        sections.append("\n".join(rows))
    said = [f"- {md(m)}" for m in (result.message, *result.diagnoses) if m]
    sections += ["\n".join(said)] if said else []
    if result.mistake:
        sections.append(f"Looks like **{md(result.mistake.name)}**: {md(result.mistake.hint)}")
    elif result.status == "wrong" and not (result.diagnoses or result.message) and not grading.correct(result.parts):
        sections.append("Matches none of the classic mistakes.")
    if result.status != "correct" and not result.diagnoses:  # a diagnosis names the section itself
        sections.append(f'Read docs/derivations.md, "{md(e.section)}".')
    return "\n\n".join(sections)


def scoreboard(payload):
    """The lines run_autograder prints (Gradescope keeps them for the instructor)."""
    lines = [f"{t['name']:26s}{t['extra_data']['status']:16s}{t['score']:g} / {t['max_score']:g}"
             for t in payload["tests"]]
    return "\n".join(lines + [f"total {payload['score']:g} / {sum(t['max_score'] for t in payload['tests']):g}"])


def failed(err, seconds):
    """The results.json of a grader that could not grade (its own fault, never the submission's)."""
    return {"score": 0.0, "execution_time": round(seconds), "output_format": "md", "tests": [],
            "output": f"The autograder could not grade this submission: {md(type(err).__name__)}: {md(err)}. "
                      "This is the course's fault, not yours: tell your teacher."}


def reserve(root):
    """Set RESERVE bytes aside in root/results/ (written, not sparse) before any child runs."""
    folder = os.path.join(root, "results")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ".reserve"), "wb") as f:
        f.write(b"\0" * RESERVE)
        f.flush()
        os.fsync(f.fileno())


def write_results(root, payload):
    """root/results/results.json, in the room the reserve kept."""
    folder = os.path.join(root, "results")
    os.makedirs(folder, exist_ok=True)
    try:
        os.remove(os.path.join(folder, ".reserve"))
    except FileNotFoundError:
        pass
    with atomic_write(os.path.join(folder, "results.json"), "w") as f:
        json.dump(valid_text(payload), f, indent=2, allow_nan=False)  # ASCII, with no lone surrogate left
