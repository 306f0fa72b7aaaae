"""Files on disk, carefully: checked before they are read, replaced atomically when written.

Reading: a problem folder may hold anything (a FIFO named ``*.yaml``, a link
to ``/dev/zero``, a 4 GiB sparse file), so a file is ``lstat``-ed before it is
opened (regular files only, no links, a size limit), opened with
``O_NOFOLLOW | O_NONBLOCK`` and checked again on the open descriptor, and
never read past its limit.  Writing: each output goes to a temporary file
``.NAME.PID.RANDOM.tmp`` beside it, created with the umask's permissions, then
renamed over the old one; ``replace_together`` renames a whole set of outputs
only once all of them are written, and ``clean_stale`` removes the temporary
files of a build that was killed.  ``build`` and ``cache`` both use this
module, so they do not import each other.
"""
from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path

from .errors import Location, ProblemError, ProblemErrors, StepgenError

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))
_TMP = re.compile(r"^\..+\.(?P<pid>\d+)\.[A-Za-z0-9_-]+\.tmp$")


class FileRefused(StepgenError):
    """A file stepgen will not read: not a regular file, a link, too large, unreadable."""


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_limited(path: str | Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; anything else is ``FileRefused``."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise FileRefused(f"cannot read: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        # a link could point at any file of the machine, and errors quote source lines
        raise FileRefused("is a symbolic link; stepgen does not follow links")
    if not stat.S_ISREG(st.st_mode):
        raise FileRefused(f"is {_kind(st.st_mode)}, not a regular file")
    if st.st_size > limit:
        raise FileRefused(f"file larger than {_size(limit)}")
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        raise FileRefused(f"cannot read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        st2 = os.fstat(fd)       # the file opened is the file checked (no swap in between)
        if not stat.S_ISREG(st2.st_mode) or (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino):
            raise FileRefused("changed while it was being read")
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise FileRefused(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise FileRefused(f"file larger than {_size(limit)}")
    return data


def _size(n: int) -> str:
    return f"{n // 1024} KiB" if n < 1024 * 1024 else f"{n // (1024 * 1024)} MiB"


def hash_file(h, path: Path, follow_links: bool = False) -> bool:
    """Feed a regular file to the hash ``h`` in chunks; False if it is anything else (a FIFO, a
    device; a link unless ``follow_links``: an instructor's templates may link a shared logo)."""
    try:
        if not stat.S_ISREG((os.stat if follow_links else os.lstat)(path).st_mode):
            return False
        fd = os.open(path, _READ_FLAGS & ~getattr(os, "O_NOFOLLOW", 0) if follow_links else _READ_FLAGS)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return True


def create_new(path: Path, data: bytes) -> None:
    """Write a file that must not exist yet, not even as a (dangling) link; umask permissions."""
    fd = os.open(path, _CREATE_FLAGS, 0o666)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _temporary(path: Path, data: bytes) -> Path:
    """``data`` in a new temporary file beside ``path`` (permissions: 0666 less the umask)."""
    while True:
        tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, _CREATE_FLAGS, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except BaseException:
        _unlink(tmp)
        raise
    return tmp


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def replace_together(files: dict[Path, bytes]) -> None:
    """Write every file to a temporary file first, then rename them all into place.

    If any write fails (disk full, interrupted), no output is replaced and the
    temporary files are removed: the old set stays whole."""
    done: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            done.append((_temporary(path, data), path))
        for tmp, path in done:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in done:
            _unlink(tmp)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """One file replaced atomically: a failure leaves the old one untouched."""
    replace_together({path: data})


def clean_stale(folder: Path) -> list[Path]:
    """Remove the temporary files of builds that were killed (their process is gone)."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TMP.match(name)
        if not m or _alive(int(m.group("pid"))):
            continue
        path = folder / name
        try:
            if stat.S_ISREG(os.lstat(path).st_mode):
                os.unlink(path)
                removed.append(path)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def writable_folder(folder: Path) -> None:
    """Create ``folder`` if needed and make sure files can be created in it; else a clean error."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not folder.is_dir():
            raise NotADirectoryError(20, "not a folder")
        _unlink(_temporary(folder / ".stepgen-probe", b""))
    except OSError as exc:
        raise StepgenError(f"cannot write to the output folder {folder}: {exc.strerror or exc}") from None


def read_utf8(path: str | Path, limit: int, hint: str = "") -> str:
    """The text of a file checked and read by ``read_limited``, decoded as UTF-8 without a byte-order
    mark; a refused file or a byte that is not UTF-8 is a ``ProblemErrors`` at its line and column
    (``hint`` follows the message)."""
    fname = str(path)
    try:
        data = read_limited(path, limit)
    except FileRefused as exc:
        raise ProblemErrors([ProblemError(Location(fname), str(exc))]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line, col = before.count(b"\n") + 1, len(before) - (before.rfind(b"\n") + 1) + 1
        raise ProblemErrors([ProblemError(Location(fname, line, col),
                                          f"invalid UTF-8 (byte 0x{data[exc.start]:02x}){hint}")]) from None
    return text.removeprefix("\ufeff")
