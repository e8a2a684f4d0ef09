"""The points table of the Gradescope autograder: what each exercise is worth, its parts, its time limit.

The table is autograder/points.json (TABLE), the one place a teacher changes points. `earned`
turns a graded exercise into points: each part right (on NumPy, and at the realistic size)
earns its weight's share. What only the process running the student's code can report (an
input changed in place, an array of another backend) is said to the student and earns or
loses nothing: that process could have said otherwise (README, "For teachers").
"""

import json
import os
from dataclasses import dataclass

from nn.gradcheck import TOLERANCE

from . import grading
from .diagnosis import listed
from .exercises import EXERCISES

TABLE = os.path.join("autograder", "points.json")  # in the project, and in /autograder/source
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")  # Gradescope's


class TableError(ValueError):
    """The points table is not one the autograder can grade by; its message names the entry."""


@dataclass(frozen=True)
class Points:
    """What an exercise is worth: `points`, split over its `parts` by weight; its time limit."""

    points: float
    parts: dict
    time_limit_s: float


@dataclass(frozen=True)
class Table:
    exercises: dict  # {qualname: Points}
    visibility: str

    def __getitem__(self, exercise):
        return self.exercises[exercise.qualname]

    @property
    def total(self):
        return sum(p.points for p in self.exercises.values())


def number(value, where, low=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= low or value == float("inf"):
        raise TableError(f"{TABLE}: {where} must be a number >= {low:g}, not {value!r}")
    return float(value)


def load_table(path):
    """The Table in the JSON file `path` (see autograder/points.json's "about")."""
    try:
        with open(path) as f:
            raw = json.load(f)
        entries, limit = raw["exercises"], number(raw["time_limit_s"], "time_limit_s", 0.1)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise TableError(f"{path}: not a points table ({type(err).__name__}: {err})") from None
    if raw.get("visibility", "visible") not in VISIBILITIES:
        raise TableError(f"{TABLE}: visibility must be one of {listed(VISIBILITIES)}")
    names = [e.qualname for e in EXERCISES]
    if not isinstance(entries, dict) or sorted(entries) != sorted(names):
        raise TableError(f"{TABLE}: exercises must name each of {listed(names)}, once")
    table = {}
    for name in names:
        entry = entries[name]
        parts = entry.get("parts") if isinstance(entry, dict) else None
        if not isinstance(parts, dict) or not parts:
            raise TableError(f"{TABLE}: {name} needs its parts, {{part: weight}}")
        weights = {part: number(w, f"{name}'s weight of {part}") for part, w in parts.items()}
        if not sum(weights.values()) > 0:
            raise TableError(f"{TABLE}: {name}'s parts weigh nothing")
        table[name] = Points(number(entry.get("points"), f"{name}'s points"), weights,
                             number(entry.get("time_limit_s", limit), f"{name}'s time_limit_s", 0.1))
    return Table(table, raw.get("visibility", "visible"))


def parts_of(exercise, expected):
    """The part names of an exercise, as its Result reports them, from its check's expected."""
    return list(grading.worst_per_part(dict.fromkeys(expected, 0.0)) if exercise.per_part else expected)


def check_parts(table, exercise, expected):
    if sorted(table[exercise].parts) != sorted(parts_of(exercise, expected)):
        raise TableError(f"{TABLE}: the parts of {exercise.qualname} are {listed(parts_of(exercise, expected))}, "
                         f"not {listed(table[exercise].parts)}")


def earned(result, points):
    """The points a Result earns: all when correct; else each part right earns its weight's share."""
    if result.status == "correct":
        return points.points
    if result.status != "wrong":
        return 0.0
    right = sum(w for part, w in points.parts.items() if result.parts.get(part, float("inf")) < TOLERANCE)
    return round(points.points * right / sum(points.parts.values()), 4)
