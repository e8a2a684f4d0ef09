"""The class report: what a class made of the lab, counted from the autograder's results.json files.

`found_results` finds them (a Gradescope export is a folder of folders); `class_counts` tallies
each exercise's statuses and classic mistakes; `class_markdown` and `save_class_figure` show them.
It runs on the teacher's machine (apps/class_report.py), never in the grader.
"""

import os
from dataclasses import dataclass

import numpy as np

from lab.files import atomic_write
from .results import STATUSES, md


def found_results(paths):
    """Every results.json among `paths`, a folder searched recursively (as a Gradescope export)."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            found += sorted(os.path.join(here, "results.json") for here, _, names in os.walk(path)
                            if "results.json" in names)
        else:
            found.append(path)
    return found


@dataclass
class Tally:
    """One exercise across the class: how many submissions had each status, and each mistake."""

    name: str
    statuses: dict
    mistakes: dict
    score: float = 0.0
    max_score: float = 0.0


def class_counts(payloads):
    """[Tally] per exercise (by test name, in order), from results.json payloads."""
    tallies = {}
    for payload in payloads:
        for test in payload.get("tests", []):
            extra = test.get("extra_data") or {}
            tally = tallies.setdefault(test["name"], Tally(test["name"], dict.fromkeys(STATUSES, 0), {}))
            status = extra.get("status", "correct" if test.get("status") == "passed" else "wrong")
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
            if extra.get("mistake"):
                tally.mistakes[extra["mistake"]] = tally.mistakes.get(extra["mistake"], 0) + 1
            tally.score += test.get("score", 0.0)
            tally.max_score += test.get("max_score", 0.0)
    return sorted(tallies.values(), key=lambda t: (int(t.name.split()[0]) if t.name.split()[0].isdigit() else 0,
                                                   t.name))


def class_markdown(tallies, submissions):
    """The class report as a Markdown table: statuses, mean points, and the mistakes by count."""
    shown = [s for s in STATUSES if s in STATUSES[:4] or any(t.statuses.get(s) for t in tallies)]
    lines = [f"# Class report: {submissions} submissions", "",
             "| exercise | " + " | ".join(shown) + " | mean points | classic mistakes (how many made them) |",
             "|:--|" + "--:|" * (len(shown) + 1) + ":--|"]
    for t in tallies:
        n = sum(t.statuses.values()) or 1
        mistakes = ", ".join(f"{md(m)} ({c})" for m, c in sorted(t.mistakes.items(), key=lambda mc: (-mc[1], mc[0])))
        lines.append(f"| {md(t.name)} | " + " | ".join(str(t.statuses.get(s, 0)) for s in shown) +
                     f" | {t.score / n:.3g} of {t.max_score / n:g} | {mistakes or '-'} |")
    return "\n".join(lines) + "\n"


def save_class_figure(tallies, path):
    """One figure: each exercise's submissions by status (left), and each classic mistake's count (right).
    matplotlib is imported here, on the teacher's machine: the grader's has none."""
    from matplotlib.figure import Figure

    from lab.plots import DPI, TAB10

    mistakes = [(f"{t.name.split()[0]}: {m}", c) for t in tallies for m, c in t.mistakes.items()]
    fig = Figure(figsize=(12, 0.4 * max(len(tallies), len(mistakes), 4) + 1.5))
    left, right = fig.subplots(1, 2)
    y = np.arange(len(tallies))
    start = np.zeros(len(tallies))
    for i, status in enumerate(STATUSES):
        counts = np.array([t.statuses.get(status, 0) for t in tallies], dtype=float)
        if counts.any():
            left.barh(y, counts, left=start, color=TAB10(i), label=status)
            start += counts
    left.set_yticks(y, [t.name for t in tallies])
    left.invert_yaxis()
    left.set_xlabel("submissions")
    left.set_title("How each exercise went")
    left.legend(loc="lower right", fontsize="small")
    right.barh(np.arange(len(mistakes)), [c for _, c in mistakes], color=TAB10(3))
    right.set_yticks(np.arange(len(mistakes)), [m for m, _ in mistakes])
    right.invert_yaxis()
    right.set_xlabel("submissions that made it")
    right.set_title("Classic mistakes recognised")
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=DPI)
