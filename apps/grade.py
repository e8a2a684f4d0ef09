"""python -m apps.grade: the lab's grader (`make grade` in a workspace made by `make exercises`).

It grades each exercise of lab/exercises.py with the student's function in place and the
reference everywhere else (lab/grading.py says how), prints the scoreboard, and names the
classic mistake a wrong answer matches, with a hint.
Exit status: 0 when every exercise graded is correct, 1 otherwise, 2 on bad input.
"""

import argparse
import sys

try:  # these import the student's files: one that does not even import is said so, in one line
    from lab.cli import UsageError, run_main
    from lab.exercises import EXERCISES, find
    from lab.files import write_json
    from lab.grading import TOLERANCE, grade, in_workspace, json_report
except Exception as err:  # a SyntaxError, or a name used before it exists
    where = f" ({err.filename}, line {err.lineno})" if isinstance(err, SyntaxError) else ""
    sys.exit(f"python -m apps.grade: error: the code does not import{where}: {type(err).__name__}: {err}")


def scoreboard(results):
    lines = [f"{'':3s}{'exercise':23s}{'status':13s}worst relative error of each (correct below {TOLERANCE:g})"]
    for r in results:
        errors = "  ".join(f"{name} {value:.1e}" for name, value in r.errors.items())
        lines.append(f"{r.exercise.order:2d} {r.exercise.qualname:23s}{r.status:13s}{errors or r.message}")
        if r.status == "wrong" and r.errors and r.message:
            lines.append(f"{'':39s}{r.message}")
        if r.mistake:
            lines.append(f"{'':39s}looks like '{r.mistake.name}': {r.mistake.hint}")
        elif r.status == "wrong" and r.errors:
            lines.append(f"{'':39s}matches none of the classic mistakes: read docs/derivations.md, "
                         f"\"{r.exercise.section}\"")
    correct = sum(r.status == "correct" for r in results)
    lines.append(f"\n{correct} of {len(results)} correct")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m apps.grade",
                                description="Grade the lab's exercises: gradient checks, and a diagnosis of "
                                            "wrong answers.")
    p.add_argument("exercises", nargs="*", metavar="EXERCISE",
                   help="only these, by number or name (default: all), e.g. 2 or Dense.backward")
    p.add_argument("--json", metavar="FILE", help="also write the scoreboard as JSON, for a course's autograder")
    p.add_argument("--before-training", action="store_true",
                   help="what `make vae` runs first: in a workspace, train only once every exercise is correct")
    args = p.parse_args(argv)

    def body():
        chosen = [select(name) for name in args.exercises] or list(EXERCISES)
        if args.before_training:
            return before_training()
        results = grade(chosen)
        print(scoreboard(results))
        if args.json:
            write_json(args.json, json_report(results))
        if any(r.status != "correct" for r in results):
            sys.exit(1)

    return run_main(p, body)


def select(name):
    if name.isdigit() and 1 <= int(name) <= len(EXERCISES):
        return EXERCISES[int(name) - 1]
    try:
        return find(name)
    except KeyError as err:
        raise UsageError(f"{err.args[0]}; or give a number from 1 to {len(EXERCISES)}") from None


def before_training():
    """In a workspace: say whether the VAE will train on the student's own code, or stop."""
    if not in_workspace():
        return
    results = grade()
    open_ones = [r for r in results if r.status != "correct"]
    if open_ones:
        print(f"{len(open_ones)} of {len(results)} exercises are not correct yet "
              f"({', '.join(r.exercise.qualname for r in open_ones)}): `make grade` shows where they stand. "
              "The VAE trains on your code once all are.", file=sys.stderr)
        sys.exit(1)
    print(f"all {len(results)} exercises correct: the VAE trains on your own code")


if __name__ == "__main__":
    sys.exit(main())
