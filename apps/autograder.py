"""python -m apps.autograder: the lab's Gradescope autograder (course/judge.py says how it grades).

Without --build it is what run_autograder runs for each submission: it grades ROOT/submission
with the course's copy of the lab in ROOT/source (ROOT: --root, else $AUTOGRADER_ROOT, else
/autograder), writes ROOT/results/results.json, and prints the scoreboard for the instructor.
It always writes a results.json, and exits 0 (a grade is no error); a fault of the grader's
own is said in that file's output, and exits 1.

With --build ZIP (`make autograder`) it writes the zip to upload to Gradescope instead.
"""

import argparse
import os
import sys
import time

from course import bundle, judge, results
from course.points import TableError, load_table


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m apps.autograder",
                                description="Grade a Gradescope submission of the lab, or build the autograder zip.")
    p.add_argument("--root", default=os.environ.get("AUTOGRADER_ROOT", "/autograder"),
                   help="the autograder's root, holding source/, submission/ and results/ (default: "
                        "$AUTOGRADER_ROOT, else /autograder)")
    p.add_argument("--build", metavar="ZIP", help="write the autograder zip to upload to Gradescope, and stop")
    args = p.parse_args(argv)
    if args.build:
        return build(args.build)
    start = time.monotonic()
    try:
        results.reserve(args.root)  # before any child runs: room for results.json, whatever they do to the disk
        graded, taken, isolated = judge.grade_submission(args.root)
        table = load_table(os.path.join(args.root, "source", judge.TABLE))
        payload = results.results_json(graded, table, taken, isolated, time.monotonic() - start)
    except Exception as err:  # the grader's own fault (its table, its disk): still a results.json that says so
        payload = results.failed(err, time.monotonic() - start)
        results.write_results(args.root, payload)
        print(f"python -m apps.autograder: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    results.write_results(args.root, payload)
    print(results.scoreboard(payload))
    return 0


def build(zip_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        files = bundle.build(root, zip_path)
    except (TableError, OSError) as err:
        sys.exit(f"python -m apps.autograder: error: {err}")
    print(f"wrote {zip_path} ({len(files)} files): upload it as the assignment's autograder on Gradescope "
          "(Configure Autograder, zip file upload)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
