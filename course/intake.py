"""The submission intake: a student's upload read as text, and never run.

Gradescope unpacks the upload into /autograder/submission: loose files, a workspace's folders,
or a zip left whole. `take_submission` finds each exercise file there, at its path under any
folders or else by its name, and reads at most MAX_FILE bytes of it. Whatever the upload holds,
the intake ends with an answer for every exercise file (its text, or why there is none): links
are not followed, the walk is a loop bounded in depth and in entries (no recursion), a zip is
read member by member (a corrupt member is that file's problem alone), and no read is unbounded:
a zip's end record is checked first (`directory_fits`), so that zipfile never reads a central
directory larger than MAX_DIRECTORY or than the file, nor one of ZIP64's (whose sizes it trusts).
`their_function` parses a text and finds the exercise's function in it.
"""

import ast
import os
import stat
import struct
import zipfile
from dataclasses import dataclass

from . import grading
from .exercises import EXERCISES
from .workspace import function_node

MAX_FILE = 1 << 20  # bytes of a submitted file read, at most
MAX_DEPTH = 32  # folders below the submission looked into
MAX_ENTRIES = 10_000  # files, folders and zip members looked at, in all
MAX_DIRECTORY = 8 << 20  # bytes of a zip's central directory read, at most
END = struct.Struct("<4s4H2LH")  # a zip's end-of-central-directory record (22 bytes, then its comment)


@dataclass
class Submitted:
    """The student's file for an exercise file: where it was found, and its text (None when it
    was not found or cannot be read: `problem` says why)."""

    path: str = ""
    text: object = None
    problem: str = ""


def hidden(parts):
    return any(p.startswith(".") or p in ("__MACOSX", "__pycache__") for p in parts)  # .reference/, .git/, ...


def candidates(folder):
    """{path shown: (path parts, a function reading at most MAX_FILE + 1 bytes)}: every plain file
    of the submission, and every member of a zip in it (never unpacked); links are not followed."""
    found, todo, seen = {}, [((), 0)], 0
    while todo and seen < MAX_ENTRIES:
        parts, depth = todo.pop()
        try:
            names = sorted(os.listdir(os.path.join(folder, *parts)))
        except OSError:
            continue
        for name in names[:MAX_ENTRIES - seen]:
            seen += 1
            path, rel = os.path.join(folder, *parts, name), (*parts, name)
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if hidden(rel):
                continue
            if stat.S_ISDIR(mode) and depth < MAX_DEPTH:
                todo.append((rel, depth + 1))
            elif stat.S_ISREG(mode) and name.endswith(".zip"):
                members = zip_members(path, "/".join(rel), MAX_ENTRIES - seen)
                seen += len(members)
                found.update(members)
            elif stat.S_ISREG(mode):
                found["/".join(rel)] = (list(rel), lambda path=path: read_plain(path))
    return found


def read_plain(path):
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a plain file")
        return f.read(MAX_FILE + 1)


def directory_fits(path):
    """Whether the zip's end record, found where zipfile looks for it, claims a central directory
    within MAX_DIRECTORY and within the file, with no ZIP64 locator before it: read before zipfile
    reads anything, 64 KiB at most."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        tail_at = max(0, size - (1 << 16) - END.size)
        f.seek(tail_at)
        tail = f.read(size - tail_at)
    at = len(tail) - END.size if tail[-END.size:-END.size + 4] == b"PK\x05\x06" and tail[-2:] == b"\0\0" else (
        tail.rfind(b"PK\x05\x06"))
    if at < 0 or at + END.size > len(tail):
        return False
    *_, directory_size, directory_at, _ = END.unpack_from(tail, at)
    end_at = tail_at + at
    zip64 = tail[at - 20:at - 16] == b"PK\x06\x07" if at >= 20 else tail_at > 0
    return not zip64 and directory_size <= MAX_DIRECTORY and directory_size <= end_at and directory_at <= end_at


def zip_members(path, rel, room):
    try:
        if not directory_fits(path):
            return {}
        with zipfile.ZipFile(path) as z:
            infos = [i for i in z.infolist()[:room] if not i.is_dir() and not hidden(i.filename.split("/"))]
    except Exception:  # not a zip, or one whose directory cannot be read: no files in it
        return {}

    def reader(info):
        def read():
            with zipfile.ZipFile(path) as z, z.open(info) as f:
                return f.read(MAX_FILE + 1)
        return read

    return {f"{rel}:{i.filename}": (i.filename.split("/"), reader(i)) for i in infos}


def take_submission(folder):
    """{exercise file: Submitted}: each exercise file found at its path (under any folders: a
    zip's top folder is fine), or else by its name alone (loose files)."""
    found, taken = candidates(folder), {}
    for file in sorted({e.file for e in EXERCISES}):
        want = file.split("/")
        at_path = [p for p, (parts, _) in found.items() if parts[-len(want):] == want]
        by_name = [p for p, (parts, _) in found.items() if parts[-1] == want[-1]]
        chosen = min(at_path or by_name, key=lambda p: (len(found[p][0]), p), default=None)
        if chosen is None:
            taken[file] = Submitted(problem=f"no {file} in the submission (upload the workspace's {file}, or a zip "
                                            "of the workspace)")
            continue
        try:
            data = found[chosen][1]()
            why = f"larger than {MAX_FILE >> 10} KiB" if len(data) > MAX_FILE else ""
            taken[file] = Submitted(chosen, problem=f"your {chosen} cannot be read ({why})") if why else (
                Submitted(chosen, data.decode("utf-8")))
        except Exception as err:  # a corrupt zip member (zlib.error, EOFError, ...), a file that is no text
            taken[file] = Submitted(chosen, problem=f"your {chosen} cannot be read ({type(err).__name__})")
    return taken


def their_function(submitted, exercise):
    """(the FunctionDef of the exercise in the submitted text, or None; the Result if None)."""
    if submitted.text is None:
        return None, grading.Result(exercise, "not submitted", {}, submitted.problem)
    try:
        node = function_node(ast.parse(submitted.text), exercise.qualname)
    except SyntaxError as err:
        line = f" (line {err.lineno}: {(err.text or '').strip()[:200]})" if err.lineno else ""
        return None, grading.Result(exercise, "does not parse", {},
                                    f"your {submitted.path} does not parse{line}: {str(err.msg)[:200]}")
    except KeyError:
        return None, grading.Result(exercise, "not submitted", {},
                                    f"{exercise.qualname} is not defined in your {submitted.path}")
    except (ValueError, RecursionError, MemoryError) as err:
        return None, grading.Result(exercise, "does not parse", {},
                                    f"your {submitted.path} does not parse ({type(err).__name__})")
    if not isinstance(node, ast.FunctionDef):
        return None, grading.Result(exercise, "not submitted", {}, f"{exercise.qualname} is not a function (def)")
    return node, None
