"""Where a node's cookie comes from, and the checks on it (private; `net_kernel` re-exports
`default_cookie`).

Rules of this module:
- The cookie is a shared secret: whoever holds it can run any code on every node of the
  cluster, exactly as in Erlang. So a cookie file must be a regular file owned by this
  user and readable or writable by nobody else; anything else is refused with
  `CookieError`, as Erlang refuses a ~/.erlang.cookie that others can read.
- A new cookie file is created with mode 0400 (`O_CREAT | O_EXCL | O_NOFOLLOW`), written,
  and then hard-linked into place: it is never readable by others, not even for a moment,
  never seen half-written, and a planted symlink is neither followed nor replaced.
- A cookie shorter than `MIN_COOKIE_CHARS` is accepted with a warning: one captured
  handshake lets an eavesdropper guess it offline.
- No module-level mutable state; the environment is only read.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

__all__ = [
    "COOKIE_ENV",
    "MIN_COOKIE_CHARS",
    "CookieError",
    "check_strength",
    "default_cookie",
    "default_cookie_path",
    "read_cookie_file",
]

COOKIE_ENV = "ERLPY_COOKIE"
MIN_COOKIE_CHARS = 16  # secrets.token_hex(8) is 16 characters: 64 random bits
_MAX_COOKIE_FILE = 4096

log = logging.getLogger("actors.cookie")


class CookieError(ValueError):
    """A cookie file is unsafe or unusable; the message says why and what to do."""


def default_cookie_path() -> Path:
    return Path.home() / ".erlpy.cookie"


def default_cookie() -> str:
    """`$ERLPY_COOKIE`, else `~/.erlpy.cookie` (created with a random cookie, mode 0400,
    if missing), as Erlang's ~/.erlang.cookie. Raises CookieError for an unsafe file."""
    from_env = os.environ.get(COOKIE_ENV)
    if from_env:
        return from_env
    path = default_cookie_path()
    try:
        _create(path, secrets.token_hex(16))
    except FileExistsError:
        pass
    return read_cookie_file(path)


def _create(path: Path, cookie: str) -> None:
    """Write a new cookie file readable by its owner only; FileExistsError if there is one.

    The cookie is written to a private temporary file first and then linked into place,
    so a node racing this one never reads a half-written (empty) cookie file.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o400)
    try:
        try:
            os.write(fd, cookie.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path, follow_symlinks=False)  # atomic; EEXIST if one is there
    finally:
        os.unlink(tmp)


def read_cookie_file(path: str | os.PathLike[str]) -> str:
    """The cookie in `path` (surrounding whitespace stripped).

    Raises CookieError if it is not a regular file, is owned by another user, can be read
    or written by group or others, is empty, or is not UTF-8 text.
    """
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise CookieError(f"cannot open cookie file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        _check_file(path, info)
        data = os.read(fd, _MAX_COOKIE_FILE + 1)
    finally:
        os.close(fd)
    if len(data) > _MAX_COOKIE_FILE:
        raise CookieError(f"cookie file {path} is over {_MAX_COOKIE_FILE} bytes")
    try:
        cookie = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CookieError(f"cookie file {path} is not UTF-8 text") from None
    if not cookie:
        raise CookieError(f"cookie file {path} is empty")
    return cookie


def _check_file(path: str, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise CookieError(f"cookie file {path} is not a regular file")
    if info.st_uid != os.geteuid():
        raise CookieError(
            f"cookie file {path} is owned by uid {info.st_uid}, not by this user "
            f"(uid {os.geteuid()}): refusing it"
        )
    if info.st_mode & 0o077:
        raise CookieError(
            f"cookie file {path} has mode {stat.S_IMODE(info.st_mode):04o}: other users can "
            f"read or change it; run `chmod 400 {path}`"
        )


def check_strength(cookie: str, node: str) -> None:
    """Log a warning if `cookie` is short enough to guess from a captured handshake."""
    if len(cookie) < MIN_COOKIE_CHARS:
        log.warning(
            "node %s: the cookie is only %d characters; anyone who captures one handshake "
            "can guess it offline, and whoever holds it can run any code on this node. "
            "Use at least %d random characters, e.g. secrets.token_hex(16).",
            node, len(cookie), MIN_COOKIE_CHARS,
        )
