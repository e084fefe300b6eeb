"""Writes the WebSocket corpus: an upgrade request followed by client frames.

Run from anywhere: python3 tests/corpus/ws/make_corpus.py. The .http files are
committed; this script says how each was made and rewrites them identically
(fixed masking keys). The .expect files are written by hand.
"""

import struct
from pathlib import Path

HERE = Path(__file__).parent
KEY = b"\x37\xfa\x21\x3d"

UPGRADE = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def frame(opcode, payload=b"", fin=True, masked=True, rsv=0, length=None):
    """One frame (RFC 6455 §5.2); `length` overrides the encoded length."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    return head + KEY + bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))


def close(code=None, reason=b""):
    return frame(CLOSE, b"" if code is None else struct.pack("!H", code) + reason)


BYE = close(1000, b"bye")

CASES = {
    # Accepted exchanges, each ending with the client's close.
    "text_echo": frame(TEXT, b"Hello") + BYE,
    "binary_echo": frame(BINARY, bytes(range(256)) * 2) + BYE,
    "empty_messages": frame(TEXT) + frame(BINARY) + BYE,
    "long_16bit_length": frame(TEXT, b"x" * 300) + BYE,
    "long_64bit_length": frame(BINARY, b"y" * 70000) + BYE,
    "fragmented_text": frame(TEXT, b"Hel", fin=False) + frame(CONT, b"lo", fin=False)
    + frame(CONT, b"!") + BYE,
    "fragmented_with_ping": frame(BINARY, b"ab", fin=False) + frame(PING, b"p")
    + frame(CONT, b"cd") + BYE,
    "utf8_split_across_fragments": frame(TEXT, "é€".encode()[:2], fin=False)
    + frame(CONT, "é€".encode()[2:]) + BYE,
    "ping_pong": frame(PING, b"are you there") + frame(PONG, b"unsolicited") + BYE,
    "several_messages": frame(TEXT, b"one") + frame(TEXT, b"two") + frame(BINARY, b"3") + BYE,
    "close_no_status": frame(TEXT, b"hi") + close(),
    "close_going_away": close(1001, b"tab closed"),
    "data_after_close": BYE + frame(TEXT, b"ignored"),
    "no_close_frame": frame(TEXT, b"then the connection drops"),
    # Protocol errors (RFC 6455): the expected close code.
    "unmasked_frame": frame(TEXT, b"hi", masked=False),
    "reserved_bits": frame(TEXT, b"hi", rsv=0b100),
    "reserved_opcode": frame(0x3, b"hi"),
    "reserved_control_opcode": frame(0xB, b"hi"),
    "invalid_utf8_text": frame(TEXT, b"\xff\xfe"),
    "invalid_utf8_across_fragments": frame(TEXT, b"\xe2\x82", fin=False) + frame(CONT, b"(") + BYE,
    "fragmented_ping": frame(PING, b"p", fin=False),
    "control_payload_too_long": frame(PING, b"z" * 126),
    "continuation_without_start": frame(CONT, b"orphan"),
    "new_message_inside_fragments": frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"),
    "close_one_byte_payload": frame(CLOSE, b"\x03"),
    "close_reserved_code": close(1005),
    "close_code_out_of_range": close(999),
    "close_invalid_utf8_reason": close(1000, b"\xc3\x28"),
    "length_msb_set": frame(BINARY, b"", length=1 << 63),
    # The client then goes quiet without closing (`timeout_*`): the
    # server's ping goes unanswered, so it closes with 1011.
    "timeout_unanswered_ping": b"",
    "timeout_silent_after_echo": frame(TEXT, b"still there?"),
    # Handshakes the driver must deny (it answers 400).
    "bad_version": UPGRADE.replace(b"Version: 13", b"Version: 8"),
    "missing_key": UPGRADE.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""),
}


def main():
    for name, frames in CASES.items():
        data = frames if frames.startswith(b"GET ") else UPGRADE + frames
        (HERE / f"{name}.http").write_bytes(data)


if __name__ == "__main__":
    main()
