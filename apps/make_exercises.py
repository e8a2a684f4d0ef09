"""python -m apps.make_exercises (`make exercises`): the lab as a workspace for a student.

It copies the project to a folder (default exercises/) as the student's edition: the body of
every function of course/exercises.py replaced by a stub that names its exercise and the section
of docs/derivations.md to read, and the answers left out of the docstrings beside them and of
docs/derivations.md, whose sections become questions to answer on paper (course/workspace.py
says how; the originals stay in the folder's .reference/, for the grader). In that folder,
`make grade` grades what is written so far, and `make vae`, once the exercises the VAE uses
are correct, trains it on the student's own code.
"""

import argparse
import os
import sys

from lab.cli import UsageError, run_main
from course.exercises import EXERCISES
from course.workspace import make_workspace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m apps.make_exercises",
                                description="Write a copy of the project with the lab's exercises blanked out.")
    p.add_argument("--out", default="exercises", help="the folder to write (default: exercises/); it must not "
                                                      "exist yet, or be empty, so that no work is overwritten")
    args = p.parse_args(argv)

    def body():
        try:
            files = make_workspace(ROOT, args.out, EXERCISES)
        except FileExistsError as err:
            raise UsageError(str(err)) from None
        print(f"wrote the lab to {args.out}/, with {len(EXERCISES)} functions to write in {len(files)} files:")
        for e in EXERCISES:
            print(f"  {e.order:2d}. {e.qualname:22s} {e.file:22s} {e.teaches}")
        print(f"derive each in {args.out}/docs/derivations.md: its questions are there, the answers left to you")
        print(f"next: cd {args.out} && make grade   (the scoreboard; `make vae` trains on your code once all pass)")

    return run_main(p, body)


if __name__ == "__main__":
    sys.exit(main())
