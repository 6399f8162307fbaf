"""Length-prefixed frames over pipes, shared by the trainer and the zygote.

Standard library only: the zygote imports this file as a top-level module.
"""

import json
import os
import select
import struct
import time

HEADER = struct.Struct(">I")
MAX_FRAME = 64 << 20  # a peer that announces more is broken or hostile


def write_frame(fd, payload: bytes) -> None:
    data = HEADER.pack(len(payload)) + payload
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_exact(fd, n, deadline=None):
    """Read n bytes; None on end of file; TimeoutError past the monotonic deadline."""
    chunks = []
    while n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd, deadline=None, limit=MAX_FRAME):
    """One frame's payload, or None on end of file; ValueError when over `limit`."""
    head = read_exact(fd, HEADER.size, deadline)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    if size > limit:
        raise ValueError(f"frame of {size} bytes is over the limit of {limit}")
    return read_exact(fd, size, deadline)


def send_json(fd, obj) -> None:
    write_frame(fd, json.dumps(obj).encode())


def recv_json(fd, deadline=None):
    payload = read_frame(fd, deadline)
    return None if payload is None else json.loads(payload)
