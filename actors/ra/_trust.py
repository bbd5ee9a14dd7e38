"""Whether a ra data dir may be trusted, checked before anything in it is read.

Rules of this module:
- Recovery unpickles what the data dir holds, so whoever can write there can run code as
  this node. A data dir is therefore trusted only if this user (or root) owns it, every
  directory and file in it, and every directory above it, and none of them is writable by
  group or others (a directory above may be, if it is sticky, as /tmp is).
- `secure_data_dir` creates a missing data dir with mode 0700, refuses an untrusted one
  with `UntrustedDataDir` before a byte of it is read, and then tightens what it trusts:
  directories to 0700, files to 0600, so nothing in it is readable by others either.
- Symbolic links inside are checked by owner only (their mode means nothing); the data
  dir itself and the directories above it are checked where they point.
- No state; one walk of the tree per system start.
"""

from __future__ import annotations

import logging
import os
import stat

__all__ = ["UntrustedDataDir", "secure_data_dir"]

log = logging.getLogger("actors.ra")

_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
_OTHERS_ANY = 0o077


class UntrustedDataDir(PermissionError):
    """The data dir, something in it, or a directory above it, is not this user's alone."""


def secure_data_dir(path: str) -> None:
    """Create `path` (mode 0700) if missing; refuse it (`UntrustedDataDir`) unless this
    user alone can change it and everything in it; then make it private (0700/0600)."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    _check_ancestors(parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    loose = _check_tree(path)
    for entry, mode in loose:
        os.chmod(entry, mode)
    if loose:
        log.warning("ra data dir %s: made %d entries private (directories 0700, files 0600)",
                    path, len(loose))


def _trusted_owner(uid: int) -> bool:
    return uid in (os.geteuid(), 0)


def _check_ancestors(directory: str) -> None:
    """Every directory from `directory` up to / : ours or root's, and not writable by
    others unless sticky (then others cannot rename or remove what is ours in it)."""
    current = directory
    while True:
        info = os.stat(current)
        if not _trusted_owner(info.st_uid):
            raise UntrustedDataDir(
                f"{current}, above the ra data dir, is owned by uid {info.st_uid}: that user "
                "could replace the data dir. Use a directory of your own.")
        if info.st_mode & _OTHERS_WRITE and not info.st_mode & stat.S_ISVTX:
            raise UntrustedDataDir(
                f"{current}, above the ra data dir, has mode {stat.S_IMODE(info.st_mode):04o}: "
                "others could replace the data dir. Use a directory of your own.")
        up = os.path.dirname(current)
        if up == current:
            return
        current = up


def _check_tree(root: str) -> list[tuple[str, int]]:
    """Refuse an untrusted entry under `root` (root included); return the trusted entries
    whose mode lets others in, with the mode each should get."""
    loose: list[tuple[str, int]] = []
    _check_entry(root, os.stat(root), loose)
    for here, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            entry = os.path.join(here, name)
            _check_entry(entry, os.lstat(entry), loose)
    return loose


def _check_entry(entry: str, info: os.stat_result, loose: list[tuple[str, int]]) -> None:
    if not _trusted_owner(info.st_uid):
        raise UntrustedDataDir(
            f"{entry} in the ra data dir is owned by uid {info.st_uid}, not by this user: "
            "refusing to read it (recovery would run code from it)")
    if stat.S_ISLNK(info.st_mode):
        return
    mode = stat.S_IMODE(info.st_mode)
    if mode & _OTHERS_WRITE:
        raise UntrustedDataDir(
            f"{entry} in the ra data dir has mode {mode:04o}: others could have written it; "
            "refusing to read it (recovery would run code from it)")
    if mode & _OTHERS_ANY:
        want = 0o700 if stat.S_ISDIR(info.st_mode) else 0o600
        loose.append((entry, (mode & ~_OTHERS_ANY) | want))
