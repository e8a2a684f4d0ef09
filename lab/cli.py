"""What every script's command line shares, defined once.

The common flags (--dataset, --data-dir, --backend, --seed, --out, --no-progress), range
types for numeric flags, the output folder, the progress bar and line, stopping cleanly on Ctrl-C
or SIGTERM, and `run_main`, which turns every foreseeable failure into one line on
stderr and an exit status: 0 done, 1 failed while running, 2 bad input, 128 + the signal
number when stopped by a signal (130 for Ctrl-C, 143 for SIGTERM).
"""

import argparse
import math
import os
import signal
import sys
import tempfile
import time

from nn.backend import BACKEND_NAMES, ENV_VAR, BackendError

from .data import DATASETS, DataError
from .files import CheckpointError


class UsageError(Exception):
    """A mistake in how the script was called; its message says what to change."""


class RunFailed(Exception):
    """The run started and could not go on (say, the loss became NaN); exit status 1."""


class Stopped(Exception):
    """The run was stopped by a signal after saving what it could; exit status 128 + signum."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def bounded(kind, low, strict=False):
    """An argparse type: a `kind` (int or float) >= low, or > low if `strict`.

    A value outside says so in argparse's one-line error: "must be > 0, got -5".
    """
    relation = ">" if strict else ">="

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not (value > low if strict else value >= low):
            raise argparse.ArgumentTypeError(f"must be {relation} {low}, got {text}")
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        return value

    parse.__name__ = f"{kind.__name__} {relation} {low}"
    return parse


def number_list(what, example, low=1, kind=int):
    """An argparse type: comma-separated numbers of `kind` (int, or float: finite ones) >= low, as a
    tuple, such as widths "512,256", seeds "0,1,2" or, with kind float, KL weights "0.1,1,8"."""

    def parse(text):
        try:
            values = tuple(kind(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what} like {example}, got {text!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise argparse.ArgumentTypeError(f"{what} must be finite numbers, got {text}")
        if min(values) < low:
            raise argparse.ArgumentTypeError(f"{what} must be >= {low:g}, got {text}")
        return values

    return parse


def add_common_flags(parser, defaults):
    """The flags every script has. None of them sets a default in the parsed namespace
    (a flag not given is None, or absent under argument_default=SUPPRESS), so that a
    script can tell what was given; `defaults` (a config with .dataset and .seed) and
    the functions below fill in the rest."""
    parser.add_argument("--dataset", choices=DATASETS, help=f"default: {defaults.dataset}; digits for a quick run")
    parser.add_argument("--data-dir", help="folder with the four IDX files (default: data/<dataset>/, "
                                           "then system folders, then download)")
    parser.add_argument("--backend", choices=BACKEND_NAMES[:2],
                        help=f"numpy (CPU) or cupy (GPU); default: ${ENV_VAR}, else numpy")
    parser.add_argument("--seed", type=int, help=f"initial weights, data order and noise (default: {defaults.seed})")
    parser.add_argument("--out", help=f"output folder (default: runs/{parser.prog.removesuffix('.py')}-<timestamp>/)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (it is also off when "
                                                                   "output goes to a file or a pipe)")
    return parser


def backend_name_from(given):
    """The --backend given, else $VAE_BACKEND, else numpy (nn.backend.get_backend checks it)."""
    return given or os.environ.get(ENV_VAR) or "numpy"


def default_out(prog):
    """runs/<script>-<timestamp>: a new folder for every run."""
    return os.path.join("runs", f"{prog.removesuffix('.py')}-{time.strftime('%Y%m%d-%H%M%S')}")


def prepare_out(out):
    """Create `out` and prove it writable now, not after an hour of training."""
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise UsageError(f"cannot write to --out {out}: {err.strerror}") from None
    return out


def print_now(line):
    """Print a line of progress as soon as it is known, also into a log file (flushed: before a
    worker's error, if one follows). The one way a run or a study reports where it stands."""
    print(line, flush=True)


def progress_wanted(no_progress):
    """A progress bar redraws one line with carriage returns: on a terminal that is a bar,
    in a log file thousands of lines. So: only when both output streams are terminals."""
    return not no_progress and sys.stdout.isatty() and sys.stderr.isatty()


class ProgressBar:
    """A tqdm bar (on stderr) over `total` units of work, or nothing when not `enabled`.

    Called as bar(done, loss=...) it moves to `done` and shows the keyword values.
    """

    def __init__(self, enabled, total, initial=0, desc="", unit="img"):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit=unit, unit_scale=True, leave=False, desc=desc,
                            dynamic_ncols=True)

    def __enter__(self):
        return self

    def __call__(self, done, **values):
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}, refresh=False)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


class StopRequest:
    """Ctrl-C or SIGTERM (what `kill`, `timeout` and batch schedulers send) asks a loop to
    stop after its current step; a second Ctrl-C stops at once.

    Used as `with StopRequest() as stop:`, polled as `stop()`; `stop.signum` is the signal.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = None

    def __enter__(self):
        self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name}: stopping after this step and saving a checkpoint"
              f"{' (Ctrl-C again to quit at once)' if signum == signal.SIGINT else ''}", file=sys.stderr)

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    def __call__(self):
        return self.signum is not None


def run_study(parser, argv, study, report):
    """A study's script (disentangle.py, tune.py, objective.py): parse argv; then, under run_main,
    results = study(quick, given, out), `given` the flags given (None for those left out; "backend"
    resolved as backend_name_from does) and `out` the --out folder or default_out's, and print
    report(results, out): the study's table and what it wrote where."""
    args = parser.parse_args(argv)
    given = {k: v for k, v in vars(args).items() if v is not None and k not in ("quick", "out", "backend")}
    out = args.out or default_out(parser.prog)

    def body():
        results = study(args.quick, {**given, "backend": backend_name_from(args.backend)}, out)
        print()
        print(report(results, out))

    return run_main(parser, body)


def run_main(parser, body):
    """Call body(); report its foreseeable failures as one line each, with the exit status
    of the module docstring. Returns 0 when body returns."""
    try:
        body()
    except (UsageError, DataError, BackendError, CheckpointError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    except RunFailed as err:
        parser.exit(1, f"{parser.prog}: error: {err}\n")
    except Stopped as stop:
        parser.exit(128 + stop.signum)
    except KeyboardInterrupt:
        parser.exit(128 + signal.SIGINT, f"{parser.prog}: interrupted\n")
    return 0
