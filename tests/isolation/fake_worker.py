"""A stand-in for hm-worker that breaks the worker protocol on purpose
(HM_FAKE_WORKER_MODE), so the tests can show how hm reports each fault. The
test writes it out as an executable with this interpreter in its #! line and
points HM_WORKER_EXE at it."""

import os
import sys
import time

import msgspec

MODE = os.environ.get("HM_FAKE_WORKER_MODE", "")
enc = msgspec.msgpack.Encoder().encode
dec = msgspec.msgpack.Decoder().decode
MANIFEST = enc(
    {"name": "noop-executor", "version": "1.0.0", "capabilities": [{"kind": "step_executor", "runners": ["noop"]}]}
)


def send(message: list) -> None:
    body = enc(message)
    os.write(1, len(body).to_bytes(4, "little") + body)


def frames():
    buf = b""
    while True:
        while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "little"):
            data = os.read(0, 65536)
            if not data:
                return
            buf += data
        n = int.from_bytes(buf[:4], "little")
        yield dec(buf[4 : 4 + n])
        buf = buf[4 + n :]


if MODE == "exit-in-handshake":
    sys.stderr.write("fake worker: giving up at once\n")
    sys.exit(3)
if MODE == "silent":
    time.sleep(60)
    sys.exit(0)
send([0, "hm-worker", 2 if MODE == "version-2" else 1, 0, os.getpid()])
for message in frames():
    if message[0] == 1:  # LOAD
        if MODE == "big-frame":
            os.write(1, (100 << 20).to_bytes(4, "little") + b"x" * 16)
            time.sleep(60)
        if MODE == "garbage":
            os.write(1, (5).to_bytes(4, "little") + b"\xc1\xc1\xc1\xc1\xc1")
            time.sleep(60)
        send([2, 0, "", 64, 1, 0, 0, 7])
    elif message[0] == 3:  # CALL
        handle, op = message[1], message[2]
        if MODE == "unknown-id":
            send([4, 12345, 0, b"an answer to a call nobody made"])
        if op == 0:
            send([4, handle, 0, MANIFEST])
        else:
            send([4, handle, 0, enc({"exit_code": 0, "status": "succeeded"})])
    elif message[0] == 9:  # SHUTDOWN
        sys.exit(0)
