"""What a child leaves behind, taken away: its processes killed, and, where it did not run in
namespaces of its own, its files swept from every world-writable folder and its SysV IPC objects
removed (course/judge.py calls these after each child; course/sandbox.py says why).

Files are removed by a loop on folder descriptors (`remove_at`): no recursion, so no depth or
path-length limit, and no count a child can spend, only a deadline.
"""

import ctypes
import os
import signal
import stat
import time

from . import sandbox

SWEEP_SECONDS = 30  # the longest a sweep after one child may take
NOT_SWEPT = ("/proc", "/sys")  # not looked into for world-writable folders
IPC = {"shm": "shmctl", "msg": "msgctl", "sem": "semctl"}  # /proc/sysvipc/<kind>, the call removing one (IPC_RMID)


def kill_user(uid):
    """Kill every process of `uid`: kill(-1) from a process of that uid reaches each one at once
    (no fork can complete meanwhile), until /proc lists none."""
    if uid is None:
        return
    for _ in range(50):
        if not processes_of(uid):
            return
        pid = os.fork()
        if pid == 0:  # becomes the uid, kills every other process of it, and ends: nothing else runs here
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(0.02)
    raise RuntimeError(f"the processes of uid {uid} could not all be killed")


def processes_of(uid):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if str(uid) in fields.get("Uid", "").split() and not fields.get("State", "").strip().startswith("Z"):
            found.append(int(pid))  # a zombie runs nothing more: it waits for its parent to read its status
    return found


def namespaces_work():
    """Whether a child can be given mount and IPC namespaces of its own (sandbox.isolated): tried in
    a fork that then ends."""
    if os.geteuid() != 0:
        return False
    pid = os.fork()
    if pid == 0:
        try:
            sandbox.isolated()
            os._exit(0)
        except BaseException:
            os._exit(1)
    return os.waitpid(pid, 0)[1] == 0


def world_writable(top="/", skip=NOT_SWEPT):
    """Every folder under `top` that any user may write to (links not followed; `skip` not looked
    into): a loop on os.scandir."""
    found, todo = [], [top]
    while todo:
        here = todo.pop()
        try:
            with os.scandir(here) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False) and entry.path not in skip:
                            todo.append(entry.path)
                            if entry.stat(follow_symlinks=False).st_mode & stat.S_IWOTH:
                                found.append(entry.path)
                    except OSError:
                        continue
        except OSError:
            continue
    return tuple(found)


def sweep(uid, writable, seconds=SWEEP_SECONDS):
    """Remove what `uid` left: its files and folders in the folders `writable`, whatever their
    depth, and its SysV IPC objects. Raises RuntimeError past `seconds`."""
    deadline = time.monotonic() + seconds
    for folder in writable:
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            with os.scandir(fd) as entries:
                names = [e.name for e in entries if e.stat(follow_symlinks=False).st_uid == uid]
            for name in names:
                remove_at(fd, name, deadline)
        finally:
            os.close(fd)
    remove_ipc_of(uid)


def remove_at(parent, name, deadline=None):
    """Remove `name` in the folder open as `parent`, and all in it: one folder open at a time
    (going back up by ".."), names only on the stack, links never followed."""
    if not stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
        return os.unlink(name, dir_fd=parent)
    here = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    path = [name]
    while True:
        if deadline is not None and time.monotonic() > deadline:
            os.close(here)
            raise RuntimeError("what the exercise's process left could not be removed in time")
        deeper = None
        with os.scandir(here) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    deeper = entry.name
                    break
                os.unlink(entry.name, dir_fd=here)
        if deeper is not None:
            below = os.open(deeper, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=here)
            os.close(here)
            here = below
            path.append(deeper)
            continue
        done = path.pop()
        if not path:
            os.close(here)
            os.rmdir(done, dir_fd=parent)
            return None
        above = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=here)
        os.close(here)
        here = above
        os.rmdir(done, dir_fd=here)


def remove_ipc_of(uid):
    """Remove every SysV shared-memory segment, message queue and semaphore set that `uid` owns
    or created (IPC_RMID; a segment still attached goes when its last process does)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for kind, call in IPC.items():
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                header, *rows = [line.split() for line in f]
        except (OSError, ValueError):
            continue
        ident = header.index({"shm": "shmid", "msg": "msqid", "sem": "semid"}[kind])
        for row in rows:
            owners = {row[header.index(c)] for c in ("uid", "cuid") if c in header and header.index(c) < len(row)}
            if str(uid) in owners:
                getattr(libc, call)(int(row[ident]), 0, *([0] * (kind == "sem")), None)


def remove_tree(folder):
    """Remove `folder` and all in it, however deep (remove_at)."""
    parent = os.open(os.path.dirname(os.path.abspath(folder)), os.O_RDONLY | os.O_DIRECTORY)
    try:
        remove_at(parent, os.path.basename(os.path.abspath(folder)))
    finally:
        os.close(parent)
