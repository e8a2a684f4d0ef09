"""python -m apps.grade: the lab's grader (`make grade` in a workspace made by `make exercises`).

It grades each exercise of course/exercises.py with the student's function in place and the
reference everywhere else (course/grading.py says how), each under the autograder's time limit,
prints the scoreboard, and names the classic mistake a wrong answer matches, with a hint, or else
what its gradients say and the step of the derivation its wrong parts come from; a correct
backward much slower than the reference is said so, with the time training would take.
Exit status: 0 when every exercise graded is correct, 1 otherwise, 2 on bad input.
"""

import argparse
import sys

try:  # these import the student's files: one that does not even import is said so, in one line
    from lab import run
    from lab.cli import UsageError, run_main
    from lab.config import MODEL_KINDS
    from course.exercises import EXERCISES, find
    from lab.files import write_json
    from course.grading import TOLERANCE, grade, in_workspace, json_report
    from course.needs import exercises_used
except Exception as err:  # a SyntaxError, or a name used before it exists
    where = f" ({err.filename}, line {err.lineno})" if isinstance(err, SyntaxError) else ""
    sys.exit(f"python -m apps.grade: error: the code does not import{where}: {type(err).__name__}: {err}")


def scoreboard(results):
    width = max([len("exercise"), *(len(r.exercise.qualname) for r in results)]) + 2  # the name column
    indent = " " * (3 + width + 13)  # under the errors
    lines = [f"{'':3s}{'exercise':{width}s}{'status':13s}worst relative error of each (correct below {TOLERANCE:g})"]
    for r in results:
        errors = "  ".join(f"{name} {value:.1e}" for name, value in r.errors.items())
        lines.append(f"{r.exercise.order:2d} {r.exercise.qualname:{width}s}{r.status:13s}{errors or r.message}")
        if r.errors and r.message:  # what went wrong besides the values, or a correct one's warning
            lines.append(f"{indent}{r.message}")
        lines += [f"{indent}{diagnosis}" for diagnosis in r.diagnoses]  # what its gradients say
        if r.mistake:
            lines.append(f"{indent}looks like '{r.mistake.name}': {r.mistake.hint}")
        elif r.status == "wrong" and not r.diagnoses and max(r.errors.values(), default=0.0) >= TOLERANCE:
            lines.append(f"{indent}matches none of the classic mistakes: read docs/derivations.md, "
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
    p.add_argument("--before-training", metavar="MODEL", choices=[k.key for k in MODEL_KINDS],
                   help="what `make vae` and `make ae` run first: in a workspace, train MODEL only once the "
                        "exercises it uses are correct; the training flags follow after --")
    argv = sys.argv[1:] if argv is None else list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)  # after --: the training script's own flags
    args, training_flags = p.parse_args(argv[:cut]), argv[cut + 1:]

    def body():
        if args.before_training:
            return before_training(args.before_training, training_flags)
        chosen = [select(name) for name in args.exercises] or list(EXERCISES)
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


def before_training(model, training_flags):
    """In a workspace: say whether `model` (a ModelKind key), trained with `training_flags`, will
    train on the student's own code, or stop. Only the exercises its training step uses count."""
    if not in_workspace():
        return
    given, _ = run.build_parser("", "").parse_known_args(training_flags)  # --loss decides; other flags do not
    config = run.make_config(model, vars(given))
    try:
        used = exercises_used(config)
    except ValueError as err:  # settings the model refuses (the autoencoder, loss "gaussian"): in its words
        raise UsageError(str(err)) from None
    results = grade(used)
    open_ones = [r for r in results if r.status != "correct"]
    name = config.kind.name
    if open_ones:
        print(f"{len(open_ones)} of the {len(results)} exercises the {name} uses are not correct yet "
              f"({', '.join(r.exercise.qualname for r in open_ones)}): `make grade` shows where they stand. "
              f"The {name} trains on your code once they are.", file=sys.stderr)
        sys.exit(1)
    print(f"all {len(results)} exercises the {name} uses are correct: it trains on your own code")


if __name__ == "__main__":
    sys.exit(main())
