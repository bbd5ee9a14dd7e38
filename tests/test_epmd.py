"""The port mapper: protocol, name lifetime, the detached daemon, and hostile input.

Every test picks its own free port (never 4370), so tests may run in parallel. Every wait
is a bounded poll of a condition.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_until
from transport import epmd
from transport.epmd import EpmdError

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw(port: int) -> socket.socket:
    """A bare protocol connection with a bounded read timeout."""
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)


def ask(sock: socket.socket, line: bytes) -> str:
    """Send one raw request line and read one response line."""
    sock.sendall(line)
    return read_line(sock)


def read_line(sock: socket.socket) -> str:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(1)
        assert chunk, f"connection closed after {buf!r}"
        buf += chunk
    return buf[:-1].decode()


def read_to_eof(sock: socket.socket) -> bytes:
    buf = b""
    while chunk := sock.recv(65536):
        buf += chunk
    return buf


def names_or_none(port: int) -> dict[str, str] | None:
    """NAMES, or None while the mapper refuses or does not answer."""
    try:
        return epmd.names(port)
    except EpmdError:
        return None


def run_server(port: int, **kwargs: object) -> tuple[threading.Thread, threading.Event]:
    ready, stop_event = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=epmd.serve,
        args=(port,),
        kwargs={"ready": ready, "stop_event": stop_event, **kwargs},
        daemon=True,
    )
    thread.start()
    assert ready.wait(WAIT_S), "in-process mapper did not start"
    return thread, stop_event


@pytest.fixture
def mapper() -> Iterator[int]:
    """An in-process mapper on a free port; yields the port."""
    port = free_port()
    thread, stop_event = run_server(port)
    try:
        yield port
    finally:
        stop_event.set()
        thread.join(WAIT_S)
        assert not thread.is_alive()


def daemon_pids(port: int) -> list[int]:
    """Live `python -m transport.epmd --port <port>` processes (Linux /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"transport.epmd" in argv and b"--port" in argv and str(port).encode() in argv:
            pids.append(int(entry))
    return pids


@pytest.fixture
def daemon_port() -> Iterator[int]:
    """A free port for a real daemon; whatever daemon ends up on it is stopped afterwards."""
    if not Path("/proc/self/cmdline").exists():
        pytest.skip("needs /proc to see daemon processes")
    port = free_port()
    try:
        yield port
    finally:
        epmd.stop(port)
        try:
            wait_until(lambda: not daemon_pids(port), timeout=WAIT_S)
        finally:
            for pid in daemon_pids(port):  # only ever this test's daemon: the port is unique
                os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# In-process daemon: the protocol and the lifetime of a name
# ---------------------------------------------------------------------------------------------


def test_register_lookup_names(mapper: int) -> None:
    assert epmd.names(mapper) == {}
    assert epmd.lookup("n1@127.0.0.1", mapper) is None
    with (
        epmd.register("n1@127.0.0.1", "tcp://127.0.0.1:40001", mapper) as r1,
        epmd.register("n2@127.0.0.1", "tcp://127.0.0.1:40002", mapper),
    ):
        assert r1.name == "n1@127.0.0.1" and not r1.closed
        assert epmd.lookup("n1@127.0.0.1", mapper) == "tcp://127.0.0.1:40001"
        assert epmd.lookup("n2@127.0.0.1", mapper) == "tcp://127.0.0.1:40002"
        assert epmd.lookup("n3@127.0.0.1", mapper) is None
        assert epmd.names(mapper) == {
            "n1@127.0.0.1": "tcp://127.0.0.1:40001",
            "n2@127.0.0.1": "tcp://127.0.0.1:40002",
        }
    assert r1.closed
    wait_until(lambda: epmd.names(mapper) == {}, timeout=WAIT_S)


def test_raw_protocol_lines(mapper: int) -> None:
    with raw(mapper) as a, raw(mapper) as b:
        assert ask(b, b"NAMES\n") == "NAMES"
        assert ask(a, b"ALIVE x@h tcp://h:1\n") == "OK"
        assert ask(b, b"LOOKUP x@h\n") == "ADDR tcp://h:1"
        assert ask(b, b"LOOKUP y@h\n") == "NONE"
        assert ask(b, b"NAMES\n") == "NAMES x@h=tcp://h:1"
        assert ask(b, b"ALIVE y@h tcp://h:2\n") == "OK"
        assert ask(b, b"NAMES\n") == "NAMES x@h=tcp://h:1 y@h=tcp://h:2"


def test_name_taken_by_live_connection(mapper: int) -> None:
    with epmd.register("n@h", "tcp://h:1", mapper):
        with pytest.raises(EpmdError) as info:
            epmd.register("n@h", "tcp://h:2", mapper)
        assert info.value.reason == "taken"
        assert epmd.lookup("n@h", mapper) == "tcp://h:1"


def test_one_name_per_connection(mapper: int) -> None:
    with raw(mapper) as s:
        assert ask(s, b"ALIVE a@h tcp://h:1\n") == "OK"
        assert ask(s, b"ALIVE b@h tcp://h:2\n") == "ERR bad_request"
        assert ask(s, b"ALIVE a@h tcp://h:1\n") == "ERR bad_request"
        assert ask(s, b"LOOKUP a@h\n") == "ADDR tcp://h:1"
    assert epmd.lookup("b@h", mapper) is None


def test_name_freed_when_registration_closes(mapper: int) -> None:
    reg = epmd.register("n@h", "tcp://h:1", mapper)
    reg.close()
    reg.close()  # idempotent
    wait_until(lambda: epmd.lookup("n@h", mapper) is None, timeout=WAIT_S)
    with epmd.register("n@h", "tcp://h:2", mapper):
        assert epmd.lookup("n@h", mapper) == "tcp://h:2"


@pytest.mark.parametrize("how", ["shutdown", "close", "reset"])
def test_name_freed_when_socket_dies_without_a_message(mapper: int, how: str) -> None:
    s = raw(mapper)
    assert ask(s, b"ALIVE n@h tcp://h:1\n") == "OK"
    assert epmd.lookup("n@h", mapper) == "tcp://h:1"
    if how == "shutdown":
        s.shutdown(socket.SHUT_RDWR)
    elif how == "reset":  # SO_LINGER 0: close sends RST instead of FIN
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    wait_until(lambda: epmd.lookup("n@h", mapper) is None, timeout=WAIT_S)
    with epmd.register("n@h", "tcp://h:2", mapper):  # and it can be taken again
        assert epmd.lookup("n@h", mapper) == "tcp://h:2"


def test_stop_ends_in_process_serve() -> None:
    port = free_port()
    thread, _ = run_server(port)
    epmd.stop(port)
    thread.join(WAIT_S)
    assert not thread.is_alive()
    with pytest.raises(EpmdError) as info:
        epmd.lookup("n@h", port)
    assert info.value.reason == "unreachable"


# ---------------------------------------------------------------------------------------------
# Client side without a daemon
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "address"),
    [
        ("nohost", "tcp://h:1"),
        ("a@b@c", "tcp://h:1"),
        ("@h", "tcp://h:1"),
        ("n@", "tcp://h:1"),
        ("a b@h", "tcp://h:1"),
        ("a\n@h", "tcp://h:1"),
        ("a=b@h", "tcp://h:1"),
        ("n" * 254 + "@h", "tcp://h:1"),
        ("n@h", "udp://h:1"),
        ("n@h", "tcp://"),
        ("n@h", "tcp://h:1 LOOKUP x@y"),
        ("n@h", "tcp://" + "h" * 250),
    ],
)
def test_client_rejects_bad_names_and_addresses_without_sending(name: str, address: str) -> None:
    port = free_port()  # nothing listens: a send would be "unreachable"
    with pytest.raises(EpmdError) as info:
        epmd.register(name, address, port)
    assert info.value.reason == "bad_request"
    if not epmd.valid_name(name):
        with pytest.raises(EpmdError) as info:
            epmd.lookup(name, port)
        assert info.value.reason == "bad_request"


def test_unreachable_without_a_mapper() -> None:
    port = free_port()
    for call in (
        lambda: epmd.register("n@h", "tcp://h:1", port),
        lambda: epmd.lookup("n@h", port),
        lambda: epmd.names(port),
    ):
        with pytest.raises(EpmdError) as info:
            call()
        assert info.value.reason == "unreachable"
    epmd.stop(port)  # nothing to stop: a no-op


def test_unreachable_when_the_listener_is_not_a_mapper() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(EpmdError) as info:
            epmd.lookup("n@h", port, timeout_ms=200)  # accepted by the kernel, never answered
        assert info.value.reason == "unreachable"


def test_default_port_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ERLPY_EPMD_PORT", raising=False)
    assert epmd.default_port() == epmd.DEFAULT_PORT == 4370
    monkeypatch.setenv("ERLPY_EPMD_PORT", "12345")
    assert epmd.default_port() == 12345


def test_port_none_uses_the_env_port(monkeypatch: pytest.MonkeyPatch, mapper: int) -> None:
    monkeypatch.setenv("ERLPY_EPMD_PORT", str(mapper))
    with epmd.register("n@h", "tcp://h:1"):
        assert epmd.lookup("n@h") == "tcp://h:1"


# ---------------------------------------------------------------------------------------------
# Hostile and broken clients
# ---------------------------------------------------------------------------------------------


BAD_LINES = [
    b"",
    b" ",
    b"alive a@h tcp://h:1",
    b"ALIVE",
    b"ALIVE a@h",
    b"ALIVE  a@h tcp://h:1",
    b"ALIVE a@h tcp://h:1 ",
    b"ALIVE a@h tcp://h:1 extra",
    b"ALIVE nohost tcp://h:1",
    b"ALIVE a@b@c tcp://h:1",
    b"ALIVE a=b@h tcp://h:1",
    b"ALIVE a@h udp://h:1",
    b"ALIVE a@h tcp://",
    b"ALIVE a\tb@h tcp://h:1",
    b"ALIVE " + b"a" * 300 + b"@h tcp://h:1",
    b"ALIVE a@h tcp://" + b"h" * 300,
    b"LOOKUP",
    b"LOOKUP a@h b@h",
    b"LOOKUP a@h\r",
    b"LOOKUP \x00@h",
    b"NAMES x",
    b"STOP now",
    b"HELLO",
    b"\xff\xfe\xfd",
    b"LOOKUP a\xc3@h",
    b"x" * epmd.MAX_LINE,  # the longest line allowed: malformed, but not over-long
]


def test_malformed_lines_get_bad_request_and_the_connection_stays(mapper: int) -> None:
    with raw(mapper) as s:
        for line in BAD_LINES:
            assert ask(s, line + b"\n") == "ERR bad_request", line
        assert ask(s, b"LOOKUP a@h\n") == "NONE"
        assert ask(s, b"ALIVE a@h tcp://h:1\n") == "OK"
    assert epmd.names(mapper) == {}


def test_pipelined_requests_are_answered_in_order(mapper: int) -> None:
    with raw(mapper) as s:
        s.sendall(b"LOOKUP a@h\nBAD\nALIVE a@h tcp://h:1\nLOOKUP a@h\nNAMES\n")
        replies = [read_line(s) for _ in range(5)]
    assert replies == ["NONE", "ERR bad_request", "OK", "ADDR tcp://h:1", "NAMES a@h=tcp://h:1"]


@pytest.mark.parametrize("newline", [True, False])
def test_over_long_line_is_refused_and_closed(mapper: int, newline: bool) -> None:
    with raw(mapper) as s:
        assert ask(s, b"ALIVE n@h tcp://h:1\n") == "OK"
        s.sendall(b"LOOKUP " + b"a" * 2000 + (b"\n" if newline else b""))
        assert read_to_eof(s) == b"ERR bad_request\n"
    assert epmd.lookup("n@h", mapper) is None  # its name went with it
    assert epmd.names(mapper) == {}


def test_huge_garbage_stream_is_refused_and_closed(mapper: int) -> None:
    with raw(mapper) as s:
        s.sendall(b"y" * 200_000)  # more than the daemon reads before it gives up
        assert read_to_eof(s) == b"ERR bad_request\n"
    assert epmd.names(mapper) == {}


def test_random_bytes_never_crash_the_daemon(mapper: int) -> None:
    rng = random.Random(4369)
    with epmd.register("keep@h", "tcp://h:1", mapper):
        for _ in range(40):
            with raw(mapper) as s:
                s.sendall(rng.randbytes(rng.randrange(1, 3000)))
                s.shutdown(socket.SHUT_WR)
                lines = read_to_eof(s).split(b"\n")
            assert lines[-1] == b""
            assert set(lines[:-1]) <= {b"ERR bad_request"}
        assert epmd.lookup("keep@h", mapper) == "tcp://h:1"
        assert epmd.names(mapper) == {"keep@h": "tcp://h:1"}


def test_silent_client_does_not_block_others(mapper: int) -> None:
    with raw(mapper) as silent, raw(mapper) as partial:
        partial.sendall(b"LOOKUP half-a-li")
        with epmd.register("n@h", "tcp://h:1", mapper):
            assert epmd.lookup("n@h", mapper, timeout_ms=500) == "tcp://h:1"
        partial.sendall(b"ne@h\n")
        assert read_line(partial) == "NONE"
        assert ask(silent, b"NAMES\n") == "NAMES"


def test_client_that_never_reads_does_not_block_others(mapper: int) -> None:
    with epmd.register("n" * 200 + "@h", "tcp://" + "h" * 200, mapper), raw(mapper) as greedy:
        greedy.setblocking(False)
        sent = 0
        try:  # pipeline NAMES until the socket buffers are full; never read the replies
            while sent < 4_000_000:
                sent += greedy.send(b"NAMES\n" * 1000)
        except BlockingIOError:
            pass
        assert epmd.lookup("n" * 200 + "@h", mapper, timeout_ms=500) == "tcp://" + "h" * 200


def test_a_full_house_evicts_an_idle_nameless_connection_and_names_leave_a_slot() -> None:
    port = free_port()
    thread, stop_event = run_server(port, max_connections=3)
    try:
        # names may take 2 of the 3 slots; the third is always there for a lookup
        regs = [epmd.register(f"n{i}@h", f"tcp://h:{i + 1}", port) for i in range(2)]
        with raw(port) as extra:
            assert ask(extra, b"ALIVE n2@h tcp://h:3\n") == "ERR limit"
        idle = [raw(port) for _ in range(3)]  # each evicts the one before it
        assert epmd.names(port) == {"n0@h": "tcp://h:1", "n1@h": "tcp://h:2"}
        for s in idle:
            s.close()
        for r in regs:
            r.close()
    finally:
        stop_event.set()
        thread.join(WAIT_S)
    assert not thread.is_alive()


def test_idle_nameless_connections_time_out_but_registrations_do_not() -> None:
    port = free_port()
    thread, stop_event = run_server(port, idle_timeout_s=0.2)
    try:
        with epmd.register("n@h", "tcp://h:1", port), raw(port) as idle:
            assert read_to_eof(idle) == b""  # closed by the daemon within the read timeout
            assert epmd.lookup("n@h", port) == "tcp://h:1"
    finally:
        stop_event.set()
        thread.join(WAIT_S)
    assert not thread.is_alive()


# ---------------------------------------------------------------------------------------------
# The real, detached daemon
# ---------------------------------------------------------------------------------------------


def python(code: str, port: int) -> subprocess.Popen[bytes]:
    """A child Python process running `code` with PORT bound to the mapper's port."""
    script = f"PORT = {port}\n" + textwrap.dedent(code)
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)


def test_ensure_running_starts_a_detached_daemon_that_outlives_its_starter(
    daemon_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    starter = python("from transport import epmd; epmd.ensure_running(PORT)", daemon_port)
    assert starter.wait(WAIT_S * 2) == 0
    # The starter is gone; the daemon it started still answers, in a session of its own.
    (pid,) = daemon_pids(daemon_port)
    assert os.getsid(pid) == pid != os.getsid(0)
    with epmd.register("n@h", "tcp://h:1", daemon_port):

        def no_spawn(*args: object, **kwargs: object) -> None:
            raise AssertionError("ensure_running started a second daemon")

        monkeypatch.setattr(epmd.subprocess, "Popen", no_spawn)
        assert epmd.ensure_running(daemon_port) == daemon_port
        assert epmd.names(daemon_port) == {"n@h": "tcp://h:1"}
    assert daemon_pids(daemon_port) == [pid]


def test_a_second_daemon_on_a_taken_port_exits_quietly(daemon_port: int) -> None:
    assert epmd.ensure_running(daemon_port) == daemon_port
    (pid,) = daemon_pids(daemon_port)
    second = subprocess.run(
        [sys.executable, "-m", "transport.epmd", "--port", str(daemon_port)],
        cwd=ROOT,
        capture_output=True,
        timeout=WAIT_S * 2,
    )
    assert (second.returncode, second.stdout, second.stderr) == (0, b"", b"")
    assert daemon_pids(daemon_port) == [pid]


def test_registration_of_a_killed_process_is_freed(daemon_port: int) -> None:
    epmd.ensure_running(daemon_port)
    child = python(
        """
        import time
        from transport import epmd
        reg = epmd.register("victim@127.0.0.1", "tcp://127.0.0.1:40999", PORT)
        time.sleep(60)
        """,
        daemon_port,
    )
    try:
        wait_until(
            lambda: epmd.lookup("victim@127.0.0.1", daemon_port) == "tcp://127.0.0.1:40999",
            timeout=WAIT_S,
        )
        child.send_signal(signal.SIGKILL)
        child.wait(WAIT_S)
        wait_until(lambda: epmd.lookup("victim@127.0.0.1", daemon_port) is None, timeout=WAIT_S)
        with epmd.register("victim@127.0.0.1", "tcp://127.0.0.1:41000", daemon_port):
            assert epmd.lookup("victim@127.0.0.1", daemon_port) == "tcp://127.0.0.1:41000"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(WAIT_S)


def test_concurrent_ensure_running_all_succeed_with_one_daemon(daemon_port: int) -> None:
    barrier = threading.Barrier(4)
    results: list[int | BaseException] = []

    def start() -> None:
        barrier.wait(WAIT_S)
        try:
            results.append(epmd.ensure_running(daemon_port, timeout_ms=5000))
        except BaseException as e:
            results.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S * 2)
    assert results == [daemon_port] * 4
    wait_until(lambda: len(daemon_pids(daemon_port)) == 1, timeout=WAIT_S)  # losers exit
    assert epmd.names(daemon_port) == {}


def test_stop_ends_the_daemon(daemon_port: int) -> None:
    epmd.ensure_running(daemon_port)
    assert daemon_pids(daemon_port)
    epmd.stop(daemon_port)
    with pytest.raises(EpmdError) as info:
        epmd.lookup("n@h", daemon_port)
    assert info.value.reason == "unreachable"
    wait_until(lambda: not daemon_pids(daemon_port), timeout=WAIT_S)
