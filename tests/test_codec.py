"""The frame codec: layout, authentication, replay refusal, handshake payloads, fuzzing."""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transport import codec
from transport.codec import (
    DEFAULT_MAX_FRAME,
    HEADER_SIZE,
    MAGIC,
    TAG_SIZE,
    VERSION,
    Ack,
    Challenge,
    Frame,
    FrameError,
    Hello,
    Kind,
    Opener,
    Sealer,
    decode_ack,
    decode_challenge,
    decode_hello,
    encode_ack,
    encode_challenge,
    encode_hello,
    handshake_key,
    new_nonce,
    open_frame,
    open_reject,
    peek_kind,
    reject_frame,
    seal,
    session_key,
)

KEY = b"k" * 32
OTHER_KEY = b"j" * 32
NONCE_A = bytes(range(16))
NONCE_B = bytes(range(16, 32))
MAX_SEQ = 2**64 - 1

HELLO = Hello("n1@127.0.0.1", "n2@127.0.0.1", NONCE_A, "tcp://127.0.0.1:5555", 7)
CHALLENGE = Challenge("n2@127.0.0.1", "n1@127.0.0.1", NONCE_A, NONCE_B, 2**32 - 1)
ACK = Ack(NONCE_B, HELLO)
PAYLOADS: list[tuple[Callable[[Any], bytes], Callable[[bytes], Any], Any]] = [
    (encode_hello, decode_hello, HELLO),
    (encode_challenge, decode_challenge, CHALLENGE),
    (encode_ack, decode_ack, ACK),
]
DECODERS = [decode_hello, decode_challenge, decode_ack]


def reason_of(fn: Callable[..., Any], *args: Any) -> str:
    """The FrameError reason `fn(*args)` raises; fails the test if it returns or raises else."""
    with pytest.raises(FrameError) as info:
        fn(*args)
    return info.value.reason


def expected_tag(key: bytes, body: bytes) -> bytes:
    return hashlib.blake2b(body, key=key, digest_size=32).digest()


# --- layout and round trips --------------------------------------------------------------------


def test_constants_match_the_documented_layout() -> None:
    assert (MAGIC, VERSION, HEADER_SIZE, TAG_SIZE) == (b"EP", 2, 12, 32)
    assert DEFAULT_MAX_FRAME == 8 * 1024 * 1024
    assert [int(k) for k in Kind] == [1, 2, 3, 4, 5, 6, 7]


def test_seal_produces_the_documented_bytes() -> None:
    frame = seal(KEY, Kind.DATA, 0x0102030405060708, b"hello")
    body = b"EP\x02\x04\x01\x02\x03\x04\x05\x06\x07\x08hello"
    assert frame == body + expected_tag(KEY, body)
    assert len(seal(KEY, Kind.TICK, 0)) == HEADER_SIZE + TAG_SIZE


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_round_trips(kind: Kind) -> None:
    for seq, payload in [(0, b""), (1, b"x"), (12345, bytes(range(256)) * 3), (MAX_SEQ, b"\0")]:
        frame = open_frame(KEY, seal(KEY, kind, seq, payload))
        assert frame == Frame(kind, seq, payload)
        assert type(frame.kind) is Kind and type(frame.payload) is bytes
        assert peek_kind(seal(KEY, kind, seq, payload)) is kind


def test_seal_refuses_out_of_range_seq_and_unknown_kind() -> None:
    for seq in (-1, 2**64, 2**70):
        with pytest.raises(ValueError):
            seal(KEY, Kind.DATA, seq)
    with pytest.raises(ValueError):
        seal(KEY, 8, 1)  # type: ignore[arg-type]
    assert open_frame(KEY, seal(KEY, 4, 1)).kind is Kind.DATA  # type: ignore[arg-type]


def test_open_frame_accepts_bytes_like_input() -> None:
    data = seal(KEY, Kind.DATA, 3, b"abc")
    for view in (bytearray(data), memoryview(data)):
        assert open_frame(KEY, view) == Frame(Kind.DATA, 3, b"abc")  # type: ignore[arg-type]


# --- structure and tampering -------------------------------------------------------------------


def test_short_frames_are_too_short() -> None:
    data = seal(KEY, Kind.TICK, 1)
    for n in range(len(data)):
        assert reason_of(open_frame, KEY, data[:n]) == "too_short"
        assert reason_of(peek_kind, data[:n]) == "too_short"


def test_peek_kind_checks_structure_but_not_the_tag() -> None:
    data = seal(KEY, Kind.CHALLENGE, 9, b"p")
    forged = data[:-TAG_SIZE] + b"\xaa" * TAG_SIZE
    assert peek_kind(forged) is Kind.CHALLENGE
    assert reason_of(open_frame, KEY, forged) == "bad_tag"
    assert reason_of(peek_kind, b"XP" + data[2:]) == "bad_magic"
    assert reason_of(peek_kind, data[:2] + b"\x03" + data[3:]) == "bad_version"
    for kind in (0, 8, 255):
        assert reason_of(peek_kind, data[:3] + bytes([kind]) + data[4:]) == "bad_kind"


def test_flipping_any_bit_pattern_of_any_byte_is_refused() -> None:
    data = seal(KEY, Kind.DATA, 0x1122334455667788, b"tiny!")
    for pos in range(len(data)):
        for mask in range(1, 256):
            tampered = bytearray(data)
            tampered[pos] ^= mask
            reason = reason_of(open_frame, KEY, bytes(tampered))
            if pos < 2:
                assert reason == "bad_magic"
            elif pos == 2:
                assert reason == "bad_version"
            elif pos == 3:
                # the kind byte may still name a valid kind, and then only the tag catches it
                assert reason == ("bad_tag" if tampered[3] in {1, 2, 3, 4, 5, 6, 7} else "bad_kind")
            else:
                assert reason == "bad_tag", pos


def test_wrong_key_is_bad_tag() -> None:
    data = seal(KEY, Kind.DATA, 1, b"secret")
    assert reason_of(open_frame, OTHER_KEY, data) == "bad_tag"
    assert reason_of(open_frame, b"", data) == "bad_tag"


def test_appended_or_removed_bytes_are_refused() -> None:
    data = seal(KEY, Kind.DATA, 1, b"payload")
    assert reason_of(open_frame, KEY, data + b"\0") == "bad_tag"
    assert reason_of(open_frame, KEY, data[:-1]) == "bad_tag"
    assert reason_of(open_frame, KEY, data[:HEADER_SIZE] + data[HEADER_SIZE + 1 :]) == "bad_tag"


# --- keys --------------------------------------------------------------------------------------


def test_handshake_key_is_the_documented_hmac() -> None:
    stretched = hashlib.scrypt(b"cookie", salt=b"erlpy-dist cookie v2", n=1 << 14, r=8, p=1,
                               maxmem=64 * 1024 * 1024, dklen=32)
    want = hmac.new(stretched, b"erlpy-dist handshake v1", hashlib.sha256).digest()
    assert handshake_key(b"cookie") == handshake_key("cookie") == want
    assert handshake_key("kéks") == handshake_key("kéks".encode())
    assert handshake_key("cookie") != handshake_key("cookie2")
    with pytest.raises(ValueError):
        handshake_key("")


def test_session_key_is_the_documented_hmac() -> None:
    def lp(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    msg = b"erlpy-dist session v1" + lp(NONCE_A) + lp(NONCE_B) + lp(b"a@h") + lp(b"b@h")
    want = hmac.new(b"cookie", msg, hashlib.sha256).digest()
    assert session_key("cookie", NONCE_A, NONCE_B, "a@h", "b@h") == want


def test_session_keys_differ_per_direction_nonces_cookie_and_field_split() -> None:
    keys = {
        "ab": session_key("c", NONCE_A, NONCE_B, "a@h", "b@h"),
        "ba": session_key("c", NONCE_A, NONCE_B, "b@h", "a@h"),
        "swapped nonces": session_key("c", NONCE_B, NONCE_A, "a@h", "b@h"),
        "other nonce": session_key("c", NONCE_A, new_nonce(), "a@h", "b@h"),
        "other cookie": session_key("d", NONCE_A, NONCE_B, "a@h", "b@h"),
        "split moved": session_key("c", NONCE_A, NONCE_B, "a@hb", "@h"),
        "nonce split moved": session_key("c", NONCE_A + NONCE_B[:1], NONCE_B[1:], "a@h", "b@h"),
        "handshake": handshake_key("c"),
    }
    assert len(set(keys.values())) == len(keys)
    assert all(len(k) == 32 for k in keys.values())
    data = seal(keys["ab"], Kind.DATA, 1, b"for b only")
    assert open_frame(keys["ab"], data).payload == b"for b only"
    for name, key in keys.items():
        if name != "ab":
            assert reason_of(open_frame, key, data) == "bad_tag", name


def test_new_nonce_is_16_fresh_bytes() -> None:
    nonces = {new_nonce() for _ in range(32)}
    assert len(nonces) == 32
    assert all(type(n) is bytes and len(n) == 16 for n in nonces)


# --- size limit --------------------------------------------------------------------------------


class _NoHashing:
    """Stands in for the `hmac` module inside codec: any use of it fails loudly."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"codec used hmac.{name}")


def test_too_big_is_checked_first_and_without_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    fits = seal(KEY, Kind.DATA, 1, b"x" * (100 - HEADER_SIZE - TAG_SIZE))
    too_big = seal(KEY, Kind.DATA, 1, b"x" * (101 - HEADER_SIZE - TAG_SIZE))
    assert (len(fits), len(too_big)) == (100, 101)
    assert open_frame(KEY, fits, max_size=100).seq == 1
    garbage = b"\xff" * 101  # bad magic too: size still wins, so it is checked before structure
    opener = Opener(KEY, max_size=100)

    monkeypatch.setattr(codec, "hmac", _NoHashing())
    with pytest.raises(AssertionError, match="codec used hmac"):
        open_frame(KEY, fits, max_size=100)  # control: the stub does intercept hashing
    assert reason_of(open_frame, KEY, too_big, 100) == "too_big"
    assert reason_of(open_frame, KEY, garbage, 100) == "too_big"
    assert reason_of(opener.open, too_big) == "too_big"
    assert opener.rejected == {"too_big": 1}


def test_default_max_size_allows_a_large_frame() -> None:
    payload = b"\x5a" * (1 << 20)
    assert open_frame(KEY, seal(KEY, Kind.DATA, 1, payload)).payload == payload


# --- Sealer and Opener -------------------------------------------------------------------------


def test_sealer_counts_from_first_seq() -> None:
    sealer = Sealer(KEY)
    assert sealer.next_seq == 1
    seqs = [open_frame(KEY, sealer.seal(Kind.DATA, b"m")).seq for _ in range(3)]
    assert seqs == [1, 2, 3] and sealer.next_seq == 4
    later = Sealer(KEY, first_seq=10)
    assert open_frame(KEY, later.seal(Kind.TICK)) == Frame(Kind.TICK, 10, b"")
    assert open_frame(KEY, later.seal(Kind.ACK, b"a")) == Frame(Kind.ACK, 11, b"a")
    assert later.next_seq == 12


def test_sealer_refuses_to_wrap_and_bad_first_seq() -> None:
    sealer = Sealer(KEY, first_seq=MAX_SEQ)
    assert open_frame(KEY, sealer.seal(Kind.DATA)).seq == MAX_SEQ
    with pytest.raises(ValueError):
        sealer.seal(Kind.DATA)
    assert sealer.next_seq == 2**64
    for bad in (-1, 2**64):
        with pytest.raises(ValueError):
            Sealer(KEY, first_seq=bad)


def test_opener_accepts_only_the_next_seq() -> None:
    sealer, opener = Sealer(KEY), Opener(KEY)
    f1, f2, f3, f4 = (sealer.seal(Kind.DATA, bytes([i])) for i in range(4))
    assert opener.open(f1) == Frame(Kind.DATA, 1, b"\0")
    assert reason_of(opener.open, f1) == "replay"
    assert reason_of(opener.open, f3) == "seq_gap"  # f2 deleted on the path: refused
    assert opener.last_seq == 1
    assert opener.open(f2).seq == 2
    assert opener.open(f3).seq == 3
    assert reason_of(opener.open, f2) == "replay"  # older than the last accepted
    assert opener.open(f4).payload == b"\x03"
    assert (opener.last_seq, opener.accepted, opener.rejected) == (
        4, 4, {"replay": 2, "seq_gap": 1})


def test_opener_counts_rejections_per_reason_and_keeps_state() -> None:
    sealer, opener = Sealer(KEY), Opener(KEY)
    good = sealer.seal(Kind.DATA, b"ok")
    assert opener.open(good).seq == 1
    forged_next = seal(OTHER_KEY, Kind.DATA, 2, b"evil")
    tampered = bytearray(sealer.seal(Kind.DATA, b"ok2"))  # seq 2
    tampered[-1] ^= 1
    bad = [forged_next, bytes(tampered), b"junk", b"XX" + good[2:], good, forged_next]
    for data in bad:
        with pytest.raises(FrameError):
            opener.open(data)
        assert opener.last_seq == 1 and opener.accepted == 1
    assert opener.rejected == {"bad_tag": 3, "too_short": 1, "bad_magic": 1, "replay": 1}
    # a forged or tampered frame must not advance last_seq and block good ones
    sealer.next_seq = 2
    assert opener.open(sealer.seal(Kind.DATA, b"after")) == Frame(Kind.DATA, 2, b"after")
    assert (opener.last_seq, opener.accepted) == (2, 2)


def test_forged_high_seq_does_not_block_later_frames() -> None:
    opener = Opener(KEY)
    assert reason_of(opener.open, seal(OTHER_KEY, Kind.DATA, MAX_SEQ)) == "bad_tag"
    assert opener.last_seq == 0
    assert opener.open(seal(KEY, Kind.DATA, 1)).seq == 1


def test_opener_starts_after_the_given_last_seq() -> None:
    opener = Opener(KEY, last_seq=5)
    assert reason_of(opener.open, seal(KEY, Kind.DATA, 5)) == "replay"
    assert reason_of(opener.open, seal(KEY, Kind.DATA, 7)) == "seq_gap"
    assert opener.open(seal(KEY, Kind.DATA, 6)).seq == 6
    opener = Opener(KEY, last_seq=MAX_SEQ)
    assert reason_of(opener.open, seal(KEY, Kind.DATA, MAX_SEQ)) == "replay"
    with pytest.raises(ValueError):
        Opener(KEY, last_seq=-2)


def test_opener_refuses_the_other_direction() -> None:
    k_ab = session_key("c", NONCE_A, NONCE_B, "a", "b")
    k_ba = session_key("c", NONCE_A, NONCE_B, "b", "a")
    from_a = Sealer(k_ab).seal(Kind.DATA, b"hi")
    at_a = Opener(k_ba)  # A's receiving side: a frame A sent, reflected back, is refused
    assert reason_of(at_a.open, from_a) == "bad_tag"
    assert Opener(k_ab).open(from_a).payload == b"hi"


# --- REJECT frames -----------------------------------------------------------------------------


def test_reject_frame_layout_and_round_trip() -> None:
    data = reject_frame("bad cookie")
    assert data == b"EP\x02\x06" + bytes(8) + b"bad cookie" + bytes(32)
    assert open_reject(data) == "bad cookie"
    assert peek_kind(data) is Kind.REJECT
    assert open_reject(reject_frame("")) == ""
    assert reason_of(open_frame, KEY, data) == "bad_tag"  # never authenticates


def test_reject_reason_is_truncated_and_sanitised() -> None:
    assert open_reject(reject_frame("x" * 64 + "tail")) == "x" * 64
    assert len(reject_frame("y" * 1000)) == HEADER_SIZE + 64 + TAG_SIZE
    assert open_reject(reject_frame("caf\u00e9\n\x00ok~")) == "caf???ok~"
    raw = b"EP\x02\x06" + bytes(8) + b"a\x7f\x80\xffb\tc" + bytes(32)
    assert open_reject(raw) == "a???b?c"


def test_open_reject_refuses_anything_but_a_reject() -> None:
    data = reject_frame("why")
    assert reason_of(open_reject, seal(KEY, Kind.DATA, 0, b"why")) == "bad_kind"
    assert reason_of(open_reject, seal(KEY, Kind.REJECT, 0, b"why")) == "bad_tag"
    assert reason_of(open_reject, data[:-1] + b"\1") == "bad_tag"
    assert reason_of(open_reject, data[:4] + b"\0" * 7 + b"\1" + data[12:]) == "bad_seq"
    assert reason_of(open_reject, data[:20]) == "too_short"
    assert reason_of(open_reject, b"XX" + data[2:]) == "bad_magic"
    long = b"EP\x02\x06" + bytes(8) + b"z" * 65 + bytes(32)
    assert reason_of(open_reject, long) == "too_big"


# --- handshake payloads ------------------------------------------------------------------------


def test_hello_encoding_is_the_documented_layout() -> None:
    encoded = encode_hello(Hello("a", "bc", NONCE_A, "tcp://x", 258))
    assert encoded == b"\1a\2bc\x10" + NONCE_A + b"\7tcp://x" + b"\0\0\1\2"
    assert encode_ack(ACK) == b"\x10" + NONCE_B + encode_hello(ACK.hello)


@pytest.mark.parametrize(("encode", "decode", "value"), PAYLOADS)
def test_handshake_payloads_round_trip(encode: Any, decode: Any, value: Any) -> None:
    assert decode(encode(value)) == value


def test_handshake_round_trips_extreme_fields() -> None:
    long_name = "é" * 127 + "x"  # 255 bytes of UTF-8
    for hello in [
        Hello("", "", bytes(16), "", 0),
        Hello(long_name, long_name, b"\xff" * 16, long_name, 2**32 - 1),
        Hello("名前@ホスト", "n\0ul@h", NONCE_B, "tcp://[::1]:1", 1),
    ]:
        assert decode_hello(encode_hello(hello)) == hello


@pytest.mark.parametrize(("encode", "decode", "value"), PAYLOADS)
def test_every_truncation_and_any_trailing_bytes_are_bad_payload(
    encode: Any, decode: Any, value: Any
) -> None:
    encoded = encode(value)
    for n in range(len(encoded)):
        assert reason_of(decode, encoded[:n]) == "bad_payload", n
    for extra in (b"\0", b"\xff", encoded):
        assert reason_of(decode, encoded + extra) == "bad_payload"


def test_bad_utf8_in_any_text_field_is_bad_payload() -> None:
    bad = b"\x02\xc3\x28"  # a length-2 field that is not UTF-8
    surrogate = b"\x03\xed\xa0\x80"  # an encoded surrogate, which strict UTF-8 refuses
    nonce = b"\x10" + NONCE_A
    for field in (bad, surrogate):
        ok = b"\x01a"
        creation = b"\0\0\0\0"
        for hello in (
            field + ok + nonce + ok + creation,
            ok + field + nonce + ok + creation,
            ok + ok + nonce + field + creation,
        ):
            assert reason_of(decode_hello, hello) == "bad_payload"
        for challenge in (
            field + ok + nonce + nonce + creation,
            ok + field + nonce + nonce + creation,
        ):
            assert reason_of(decode_challenge, challenge) == "bad_payload"


def test_nonce_of_wrong_length_is_bad_payload() -> None:
    for n in (0, 15, 17, 255):
        assert reason_of(decode_ack, bytes([n]) + b"\0" * n) == "bad_payload"
        hello = b"\1a\1b" + bytes([n]) + b"\0" * n + b"\1c\0\0\0\0"
        assert reason_of(decode_hello, hello) == "bad_payload"
    assert reason_of(decode_ack, b"") == "bad_payload"


def test_encoders_refuse_fields_they_could_not_decode() -> None:
    too_long = "x" * 256
    bad_hellos = [
        Hello(too_long, "b", NONCE_A, "a", 0),
        Hello("a", too_long, NONCE_A, "a", 0),
        Hello("a", "b", NONCE_A, "é" * 128, 0),  # 256 bytes of UTF-8
        Hello("a", "b", NONCE_A[:15], "a", 0),
        Hello("a", "b", NONCE_A, "a", -1),
        Hello("a", "b", NONCE_A, "a", 2**32),
        Hello("\ud800", "b", NONCE_A, "a", 0),  # not encodable as UTF-8
    ]
    for hello in bad_hellos:
        with pytest.raises(ValueError):
            encode_hello(hello)
    with pytest.raises(ValueError):
        encode_challenge(Challenge("a", "b", NONCE_A, NONCE_B + b"!", 0))
    with pytest.raises(ValueError):
        encode_ack(Ack(b"", ACK.hello))
    with pytest.raises(TypeError):
        encode_ack(Ack("0123456789abcdef", ACK.hello))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode_ack(Ack(NONCE_B, "hello"))  # type: ignore[arg-type]


# --- fuzzing -----------------------------------------------------------------------------------

FUZZ = settings(max_examples=500, deadline=None)
FUZZ_LIGHT = settings(max_examples=150, deadline=None)  # extra properties, kept cheap

codec_prefix = MAGIC + bytes([VERSION])
# Bytes that often pass the cheap structural checks, so the fuzzer reaches the deeper paths.
near_frames = st.builds(
    lambda kind, seq, body: codec_prefix + bytes([kind]) + seq.to_bytes(8, "big") + body,
    st.integers(0, 8),
    st.integers(0, MAX_SEQ),
    st.binary(max_size=120),
)
any_bytes = st.one_of(st.binary(max_size=200), near_frames)


def only_frame_errors(fn: Callable[..., Any], *args: Any) -> Any:
    """Call fn; FrameError is fine (returns None), any other exception propagates and fails."""
    try:
        return fn(*args)
    except FrameError as exc:
        assert isinstance(exc.reason, str) and exc.reason
        return None


@FUZZ
@given(any_bytes)
def test_fuzz_random_bytes_raise_only_frame_error(data: bytes) -> None:
    only_frame_errors(peek_kind, data)
    assert only_frame_errors(open_frame, KEY, data) is None  # forging a tag by chance: never
    opener = Opener(KEY)
    assert only_frame_errors(opener.open, data) is None
    assert opener.last_seq == 0 and opener.accepted == 0 and sum(opener.rejected.values()) == 1
    reason = only_frame_errors(open_reject, data)
    if reason is not None:
        assert reason == open_reject(reject_frame(reason))
    for decode in DECODERS:
        only_frame_errors(decode, data)
        only_frame_errors(decode, data[HEADER_SIZE:])


# A mutation (op, where, arg) is applied to a sealed frame; several in a row compose. `where`
# is taken modulo the current length; `arg` is the bytes to insert or append, the XOR mask
# (its first byte, never 0) for "flip", and its length is the count for "delete".
mutation = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "truncate", "append"]),
    st.integers(0, 255),
    st.binary(min_size=1, max_size=16),
)


def mutate(data: bytes, ops: list[tuple[str, int, bytes]]) -> bytes:
    buf = bytearray(data)
    for op, where, arg in ops:
        pos = where % (len(buf) + 1)
        if op == "flip" and buf:
            buf[pos % len(buf)] ^= arg[0] or 0x80
        elif op == "insert":
            buf[pos:pos] = arg
        elif op == "delete":
            del buf[pos : pos + len(arg)]
        elif op == "truncate":
            del buf[pos:]
        elif op == "append":
            buf += arg
    return bytes(buf)


@FUZZ
@given(
    st.sampled_from(list(Kind)),
    st.integers(0, MAX_SEQ),
    st.binary(max_size=64),
    st.lists(mutation, min_size=1, max_size=4),
)
def test_fuzz_mutated_frames_never_open_as_anything_else(
    kind: Kind, seq: int, payload: bytes, ops: list[tuple[str, int, bytes]]
) -> None:
    original = seal(KEY, kind, seq, payload)
    mutated = mutate(original, ops)
    frame = only_frame_errors(open_frame, KEY, mutated)
    if frame is not None:
        # only a mutation that cancelled itself out (e.g. the same flip twice) may be accepted
        assert mutated == original
        assert frame == Frame(kind, seq, payload)
    else:
        assert mutated != original
    opener = Opener(KEY, last_seq=seq - 1)
    assert opener.open(original) == Frame(kind, seq, payload)
    assert only_frame_errors(opener.open, mutated) is None  # replay, or refused outright
    assert opener.last_seq == seq and opener.accepted == 1
    only_frame_errors(open_reject, mutated)


@FUZZ_LIGHT
@given(
    st.sampled_from(PAYLOADS),
    st.lists(mutation, min_size=1, max_size=4),
)
def test_fuzz_mutated_handshake_payloads_decode_canonically_or_not_at_all(
    codec_pair: tuple[Any, Any, Any], ops: list[tuple[str, int, bytes]]
) -> None:
    encode, decode, value = codec_pair
    mutated = mutate(encode(value), ops)
    decoded = only_frame_errors(decode, mutated)
    if decoded is not None:
        assert encode(decoded) == mutated  # one encoding per value: nothing else decodes


names = st.text(max_size=63)  # at most 4 bytes a char, so within the 255-byte field limit
nonces = st.binary(min_size=16, max_size=16)
creations = st.integers(0, 2**32 - 1)


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(list(Kind)), st.integers(0, 5), st.binary(max_size=64)),
        max_size=4,
    ),
    st.integers(0, MAX_SEQ),
)
def test_fuzz_random_payloads_and_seqs_round_trip(
    frames: list[tuple[Kind, int, bytes]], first_seq: int
) -> None:
    single = Frame(Kind.DATA, first_seq, b"p")
    assert open_frame(KEY, seal(KEY, single.kind, single.seq, single.payload)) == single
    sealer, opener = Sealer(KEY, first_seq=first_seq), Opener(KEY, last_seq=first_seq - 1)
    expected = first_seq
    for kind, skip, payload in frames:
        if sealer.next_seq + skip >= 2**64:
            break
        if skip:  # deleted frames: a gap the opener must refuse, changing nothing
            sealer.next_seq += skip
            assert reason_of(opener.open, sealer.seal(kind, payload)) == "seq_gap"
            sealer.next_seq = expected
        assert opener.open(sealer.seal(kind, payload)) == Frame(kind, expected, payload)
        expected += 1
    assert set(opener.rejected) <= {"seq_gap"}


@FUZZ_LIGHT
@given(names, names, nonces, nonces, names, creations)
def test_fuzz_handshake_payloads_round_trip(
    a: str, b: str, n1: bytes, n2: bytes, address: str, creation: int
) -> None:
    hello = Hello(a, b, n1, address, creation)
    challenge = Challenge(b, a, n1, n2, creation)
    assert decode_hello(encode_hello(hello)) == hello
    assert decode_challenge(encode_challenge(challenge)) == challenge
    assert decode_ack(encode_ack(Ack(n2, hello))) == Ack(n2, hello)
