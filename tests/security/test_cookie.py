"""Attacks on the cookie (issue 13, findings 3, 9, 10 and 14).

The cookie file is planted, loosened or handed over by another user and must be refused;
the cookie must not show in argv or a repr; a captured HELLO must not make the cookie
cheap to guess offline.
"""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from actors import _cookie, net_kernel, peer
from actors._cookie import CookieError, default_cookie, read_cookie_file
from actors._dist_records import DistConfig
from actors.node import Node
from actors.node.__main__ import _cookie as main_cookie
from tests.security._nobody import NOBODY, as_nobody, need_root
from transport import codec
from transport.codec import FrameError, Kind

LONG = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("ERLPY_COOKIE", raising=False)
    return tmp_path


# -- finding 9: the cookie file -------------------------------------------------------------


def test_a_new_cookie_file_is_owner_only_from_its_first_instant(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, *a: Any, **k: Any) -> int:
        calls.append((flags, mode))
        return real_open(path, flags, mode, *a, **k)

    monkeypatch.setattr(_cookie.os, "open", spy)
    monkeypatch.setattr(_cookie.os, "chmod", lambda *a: pytest.fail("chmod after create"))
    old_umask = os.umask(0)  # even with no umask, nobody else may ever read it
    try:
        cookie = default_cookie()
    finally:
        os.umask(old_umask)
    flags, mode = calls[0]
    assert flags & os.O_CREAT and flags & os.O_EXCL and flags & os.O_NOFOLLOW
    assert mode == 0o400
    path = home / ".erlpy.cookie"
    assert (path.stat().st_mode & 0o777) == 0o400
    assert len(cookie) == 32 and default_cookie() == cookie


def test_nodes_racing_to_make_the_cookie_file_all_read_one_whole_cookie(home: Path) -> None:
    code = "from actors._cookie import default_cookie; print(default_cookie())"
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(Path(__file__).parents[2])}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert len({out for out, _ in outs}) == 1 and len(outs[0][0].strip()) == 32
    assert [p.name for p in home.iterdir()] == [".erlpy.cookie"]  # no temporary left


@pytest.mark.parametrize("mode", [0o404, 0o440, 0o420, 0o402, 0o644, 0o666, 0o777])
def test_a_cookie_file_others_can_read_or_write_is_refused(home: Path, mode: int) -> None:
    path = home / ".erlpy.cookie"
    path.write_text(LONG)
    path.chmod(mode)
    with pytest.raises(CookieError, match="chmod 400"):
        default_cookie()
    with pytest.raises(CookieError):
        read_cookie_file(path)


@pytest.mark.parametrize("mode", [0o400, 0o600])
def test_an_owner_only_cookie_file_is_accepted(home: Path, mode: int) -> None:
    path = home / ".erlpy.cookie"
    path.write_text(LONG + "\n")
    path.chmod(mode)
    assert default_cookie() == LONG


def test_a_cookie_file_owned_by_another_user_is_refused(home: Path) -> None:
    need_root()
    path = home / ".erlpy.cookie"
    path.write_text(LONG)
    path.chmod(0o400)
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(CookieError, match="owned by uid 65534"):
        default_cookie()


def test_a_planted_symlink_is_neither_followed_nor_trusted(home: Path, tmp_path: Path) -> None:
    need_root()
    # the attacker points our cookie path at a file it owns, holding a cookie it knows
    lair = tmp_path / "lair"
    lair.mkdir()
    os.chown(lair, NOBODY, NOBODY)
    planted = lair / "known"
    planted.write_text(LONG)
    planted.chmod(0o400)
    os.chown(planted, NOBODY, NOBODY)
    (home / ".erlpy.cookie").symlink_to(planted)
    with pytest.raises(CookieError, match="owned by uid 65534"):
        default_cookie()
    # or at a file that does not exist yet, hoping we write our new cookie where it reads
    (home / ".erlpy.cookie").unlink()
    (home / ".erlpy.cookie").symlink_to(lair / "catch")
    with pytest.raises(CookieError):
        default_cookie()
    assert not (lair / "catch").exists()


def test_empty_or_binary_cookie_files_are_refused(home: Path) -> None:
    path = home / "c"
    for content in (b"", b"  \n", b"\xff\xfe"):
        path.write_bytes(content)
        path.chmod(0o400)
        with pytest.raises(CookieError):
            read_cookie_file(path)
        path.unlink()


# -- findings 10 and 14: argv, environment, repr -----------------------------------------------


def test_cookie_on_the_command_line_warns(caplog: pytest.LogCaptureFixture,
                                          home: Path) -> None:
    """(`home` keeps the run's own ERLPY_COOKIE: reading a cookie drops it from os.environ.)"""
    caplog.set_level(logging.WARNING, logger="actors.node")
    assert main_cookie(LONG, None) == LONG
    assert any("/cmdline" in r.getMessage() for r in caplog.records)


def test_cookie_file_option_and_environment_are_read_then_dropped(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = home / "cookie"
    path.write_text(LONG)
    path.chmod(0o400)
    assert main_cookie(None, str(path)) == LONG
    path.chmod(0o644)
    with pytest.raises(SystemExit, match="chmod 400"):
        main_cookie(None, str(path))
    monkeypatch.setenv("ERLPY_COOKIE", "from-env-" + LONG)
    assert main_cookie(None, None) == "from-env-" + LONG
    assert "ERLPY_COOKIE" not in os.environ  # the node's children do not inherit it


def test_dist_config_repr_shows_no_secret() -> None:
    config = DistConfig(cookie="the-secret-" + LONG)
    assert "the-secret" not in repr(config) and "cookie" not in repr(config)


def test_a_short_cookie_warns(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="actors.cookie")
    node = net_kernel.start_node("shortcookie@127.0.0.1", cookie="secret", epmd=False)
    try:
        assert any("only 6 characters" in r.getMessage() for r in caplog.records)
    finally:
        node.stop()


def test_another_user_cannot_read_a_peers_cookie(dist_node: Node) -> None:
    need_root()
    cookie = dist_node.dist.config.cookie  # type: ignore[union-attr]
    ok, pid, _name = peer.start()
    assert ok == "ok"
    try:
        os_pid = peer.os_pid(pid)

        def snoop(keep: list[Any]) -> tuple[bytes, str]:
            cmdline = Path(f"/proc/{os_pid}/cmdline").read_bytes()
            try:
                Path(f"/proc/{os_pid}/environ").read_bytes()
                environ = "readable"
            except PermissionError:
                environ = "denied"
            return cmdline, environ

        with as_nobody(snoop) as (cmdline, environ):
            assert b"actors.node" in cmdline and cookie.encode() not in cmdline
            assert environ == "denied"
    finally:
        peer.stop(pid)


# -- finding 3: offline guessing from a captured HELLO ----------------------------------------


def test_a_captured_hello_costs_a_scrypt_per_guess() -> None:
    hello = codec.seal(codec.handshake_key("secret"), Kind.HELLO, 0, b"captured payload")
    guesses = ["password", "123456", "erlpy", "cookie", "secret"]
    started = time.perf_counter()
    found = None
    for guess in guesses:  # the attack: derive the key for each guess, try the tag
        try:
            codec.open_frame(codec.handshake_key(guess), hello, 2048)
        except FrameError:
            continue
        found = guess
        break
    per_guess = (time.perf_counter() - started) / len(guesses)
    assert found == "secret"  # the attack is real: it finds a cookie in its list ...
    assert per_guess > 0.010  # ... at under 100 guesses a second, not 125,000 (HMAC alone)


def test_handshake_key_stays_well_under_a_tenth_of_a_second() -> None:
    times = []
    for _ in range(3):  # CPU time: wall time on a shared 2-core box measures the neighbours
        started = time.thread_time()
        codec.handshake_key(LONG)
        times.append(time.thread_time() - started)
    assert statistics.median(times) < 0.1  # ~0.05 s here
