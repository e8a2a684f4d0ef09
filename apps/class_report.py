"""python -m apps.class_report RESULTS...: what a class made of the lab, from the autograder's results.

RESULTS are results.json files written by the Gradescope autograder (python -m apps.autograder),
or folders searched recursively for them (a folder of downloaded results, one per submission).
It prints, per exercise, how many submissions were correct, wrong, not started, timed out (and
any other status met), their mean points, and which classic mistakes were made how often; and
writes the same as OUT/class_report.md, with one figure, OUT/class_report.png.
"""

import argparse
import json
import os
import sys

from course import roster
from lab.cli import UsageError, run_main
from lab.files import write_text


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m apps.class_report",
                                description="Count statuses and classic mistakes over many autograder results.")
    p.add_argument("results", nargs="+", metavar="RESULTS", help="results.json files, or folders holding them")
    p.add_argument("--out", default=".", help="the folder for class_report.md and class_report.png (default: .)")
    args = p.parse_args(argv)

    def body():
        paths = roster.found_results(args.results)
        if not paths:
            raise UsageError(f"no results.json in {', '.join(args.results)}")
        payloads = [read(path) for path in paths]
        tallies = roster.class_counts(payloads)
        report = roster.class_markdown(tallies, len(payloads))
        os.makedirs(args.out, exist_ok=True)
        write_text(os.path.join(args.out, "class_report.md"), report)
        roster.save_class_figure(tallies, os.path.join(args.out, "class_report.png"))
        print(report, end="")
        print(f"wrote {os.path.join(args.out, 'class_report.md')} and class_report.png")

    return run_main(p, body)


def read(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise UsageError(f"{path}: not a results.json ({err})") from None


if __name__ == "__main__":
    sys.exit(main())
