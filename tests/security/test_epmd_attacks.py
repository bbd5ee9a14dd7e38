"""Attacks on the port mapper by another local user (issue 13, findings 1 and 7).

Each test makes the attack from a child running as `nobody` (see `_nobody`) against a
mapper on a private loopback port, and shows it fail. Loops are bounded in count and time.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from actors import net_kernel
from actors._terms import Error
from tests.helpers import wait_until
from tests.security._nobody import as_nobody, need_root
from tests.test_epmd import WAIT_S, free_port, raw, run_server
from transport import _peercred, epmd
from transport.epmd import EpmdError

EVIL = "tcp://127.0.0.66:6666"


def _line(sock: socket.socket) -> str:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            return "closed"
        buf += chunk
    return buf[:-1].decode()


def _ask(port: int, line: bytes, keep: list[Any] | None = None) -> str:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if keep is not None:
        keep.append(sock)
    sock.sendall(line)
    reply = _line(sock)
    if keep is None:
        sock.close()
    return reply


@pytest.fixture
def mapper() -> Iterator[int]:
    port = free_port()
    thread, stop_event = run_server(port)
    try:
        yield port
    finally:
        stop_event.set()
        thread.join(WAIT_S)


# -- finding 1: stopping the mapper and taking over name resolution ---------------------------


def test_stop_is_refused_while_names_are_registered(mapper: int) -> None:
    with epmd.register("victim@127.0.0.1", "tcp://127.0.0.1:40001", mapper):
        with pytest.raises(EpmdError) as info:
            epmd.stop(mapper)
        assert info.value.reason == "names_registered"
        assert epmd.lookup("victim@127.0.0.1", mapper) == "tcp://127.0.0.1:40001"


def test_another_user_cannot_stop_the_mapper(mapper: int) -> None:
    def attack(keep: list[Any]) -> tuple[str, str]:
        return _ask(mapper, b"STOP\n"), _ask(mapper, b"STOP force\n")

    with as_nobody(attack) as replies:
        assert replies == ("ERR not_owner", "ERR not_owner")
    assert epmd.names(mapper) == {}  # still serving


def _squat(port: int, keep: list[Any]) -> None:
    """As the attacker: hold `port` and answer every request line with EVIL's address."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    listener.settimeout(WAIT_S)
    keep.append(listener)

    def serve() -> None:
        for _ in range(20):  # bounded: a few client connections are all a test makes
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    if conn.recv(1024):
                        conn.sendall(f"ADDR {EVIL}\n".encode())
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()


def test_a_mapper_run_by_another_user_is_not_believed(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    with as_nobody(lambda keep: _squat(port, keep)):
        for call in (
            lambda: epmd.lookup("n1@127.0.0.1", port),
            lambda: epmd.register("n1@127.0.0.1", "tcp://127.0.0.1:1", port),
            lambda: epmd.ensure_running(port),
        ):
            with pytest.raises(EpmdError) as info:
                call()
            assert info.value.reason == "untrusted"
        with pytest.raises((Error, EpmdError)):  # a node will not start against it either
            net_kernel.start_node("sq@127.0.0.1", cookie="x" * 32, epmd_port=port)
        # control: without the owner check the squatter's answer would have been taken
        monkeypatch.setattr(_peercred, "diag_uid", lambda reply: None)
        assert epmd.lookup("n1@127.0.0.1", port) == EVIL


def test_a_dropped_registration_is_logged_and_made_again(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    port = free_port()
    thread, stop_event = run_server(port)
    caplog.set_level(logging.WARNING, logger="transport.epmd")
    with epmd.register("n@127.0.0.1", "tcp://127.0.0.1:40002", port) as reg:
        epmd.stop(port, force=True)  # the owner may; the node must notice
        thread.join(WAIT_S)
        assert not thread.is_alive()
        thread, stop_event = run_server(port)
        try:
            assert reg.reregistered.wait(WAIT_S)
            assert reg.lost == 1
            assert epmd.lookup("n@127.0.0.1", port) == "tcp://127.0.0.1:40002"
            assert any("dropped the registration of n@127.0.0.1" in r.getMessage()
                       for r in caplog.records if r.levelno == logging.ERROR)
        finally:
            reg.close()
            stop_event.set()
            thread.join(WAIT_S)


# -- finding 7: denial of service ---------------------------------------------------------------


def test_one_user_cannot_take_every_name_slot() -> None:
    need_root()
    port = free_port()
    thread, stop_event = run_server(port, max_connections=40, max_names_per_uid=8)

    def flood(keep: list[Any]) -> list[str]:
        return [_ask(port, f"ALIVE x{i}@h tcp://h:{i + 1}\n".encode(), keep) for i in range(60)]

    try:
        with as_nobody(flood) as replies:
            assert replies.count("OK") == 8
            assert set(replies[8:]) == {"ERR limit"}
            # while the attacker holds everything it could get, the owner is not shut out
            with epmd.register("owner@127.0.0.1", "tcp://127.0.0.1:40003", port):
                assert epmd.lookup("owner@127.0.0.1", port) == "tcp://127.0.0.1:40003"
                assert len(epmd.names(port)) == 9
    finally:
        stop_event.set()
        thread.join(WAIT_S)


def test_idle_connections_never_shut_out_a_lookup() -> None:
    port = free_port()
    thread, stop_event = run_server(port, max_connections=32)

    def hog(keep: list[Any]) -> int:
        for _ in range(64):  # twice the cap, each sending one whole line to look active
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"NAMES\n")
            keep.append(sock)
        return len(keep)

    try:
        with as_nobody(hog) as held, epmd.register("n@127.0.0.1", "tcp://h:1", port):
            assert held == 64
            for _ in range(20):
                assert epmd.lookup("n@127.0.0.1", port, timeout_ms=1000) == "tcp://h:1"
    finally:
        stop_event.set()
        thread.join(WAIT_S)


def test_a_byte_trickle_does_not_keep_a_connection_open() -> None:
    port = free_port()
    thread, stop_event = run_server(port, idle_timeout_s=0.5)
    try:
        with raw(port) as sock:
            sock.settimeout(0.1)
            started = time.monotonic()
            closed = False
            for _ in range(60):  # one byte every 0.1 s, never a whole line: at most 6 s
                try:
                    sock.send(b"L")
                    closed = sock.recv(16) == b""
                except TimeoutError:
                    pass
                except OSError:
                    closed = True
                if closed:
                    break
            assert closed, "the daemon kept a trickling connection open"
            assert time.monotonic() - started < 3.0
    finally:
        stop_event.set()
        thread.join(WAIT_S)


def test_the_auto_started_mapper_gets_no_cookie(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("ERLPY_COOKIE", "do-not-leak-" + "z" * 20)
    epmd.ensure_running(port)
    try:
        pids = []
        wait_until(lambda: bool(pids.extend(_daemon_pids(port)) or pids), timeout=WAIT_S)
        with open(f"/proc/{pids[0]}/environ", "rb") as f:
            environ = f.read()
        assert b"do-not-leak" not in environ and b"ERLPY_COOKIE" not in environ
    finally:
        epmd.stop(port, force=True)


def _daemon_pids(port: int) -> list[int]:
    from tests.test_epmd import daemon_pids

    return daemon_pids(port)


def test_the_peer_uid_comes_from_the_kernel() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname(), timeout=5) as client:
            server, _ = listener.accept()
            with server:
                assert _peercred.tcp_peer_uid(server) == os.geteuid()
                assert _peercred.tcp_peer_uid(client) == os.geteuid()
    rng = random.Random(13)
    for size in (0, 1, 16, 79, 80, 200):  # a reply is parsed or refused, never an exception
        uid = _peercred.diag_uid(rng.randbytes(size))
        assert uid is None or 0 <= uid < 1 << 32
