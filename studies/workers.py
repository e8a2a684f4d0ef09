"""Jobs in processes of their own, for measurements: a fresh interpreter per job, so that its
peak memory is its own and its thread count is set before any library reads it.

A job is any object with `info` (a dict, sent once it is built) and `step()` (called once
per request; its return value, a dict, is the reply). It is built in the worker by
build(*args), so build and args must be picklable (a module-level function and plain data).
Nothing here knows what a job measures; studies/speed.py's are epochs of training.
"""

import contextlib
import multiprocessing
import os
import resource
import sys

from lab.cli import RunFailed, UsageError

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores():
    """The cores this process may run on (Linux's affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def peak_rss_mb():
    """The peak resident set size of this process so far, in MB (10^6 bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * (1 if sys.platform == "darwin" else 1024) / 1e6  # bytes on macOS, KiB on Linux


@contextlib.contextmanager
def thread_env(threads):
    """Fix the thread count of every BLAS and OpenMP library numpy or torch may load, for the
    processes started inside: these variables are read once, when a library loads."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)


def serve(build, args, expected, conn):
    """A worker process: build the job, send its info, then answer each "step" with the job's
    step(); "finish" ends it with the process's peak memory. An `expected` error while
    building (bad input: missing data, no GPU) is sent as {"error": its message}."""
    libraries_rss = peak_rss_mb()  # the interpreter and the modules imported, before the job's data
    try:
        job = build(*args)
    except expected as err:
        return conn.send({"error": str(err)})
    conn.send({"libraries_rss_mb": libraries_rss, **job.info})
    while conn.recv() == "step":
        conn.send(job.step())
    conn.send({"peak_rss_mb": peak_rss_mb()})


class Worker:
    """The parent's end of one worker process (`serve`), started with `threads` threads.

    name: what messages call it; expected: the exceptions that mean bad input (reported as
    a UsageError, exit status 2); any other failure kills the worker (a RunFailed, status 1).
    """

    def __init__(self, name, build, args, threads, expected=()):
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: its memory is its own
        self.name, (self.conn, child) = name, context.Pipe()
        with thread_env(threads):
            self.process = context.Process(target=serve, args=(build, args, expected, child), daemon=True)
            self.process.start()
        child.close()

    def send(self, request):
        self.conn.send(request)

    def ask(self, request=None):
        """The worker's reply, to `request` if given (else to the one sent last, or to its start)."""
        if request is not None:
            self.send(request)
        try:
            reply = self.conn.recv()
        except EOFError:
            self.process.join()
            raise RunFailed(f"the {self.name} worker stopped with exit status {self.process.exitcode} "
                            "(its error is printed above)") from None
        if "error" in reply:
            raise UsageError(reply["error"])
        return reply

    def close(self):
        self.conn.close()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
