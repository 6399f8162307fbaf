"""Length-prefixed frames over pipes, shared by the trainer and the workers.

Standard library only: the zygote imports this file as a top-level module.
"""

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


class FrameTooLarge(ValueError):
    """The peer announced a frame over the reader's limit."""


class ProtocolError(ValueError):
    """More bytes than one frame: nothing else may be in flight on these pipes."""


def read_frame(fd, deadline=None, limit=MAX_FRAME):
    """One frame's payload, or None on end of file.

    Every pipe here carries one frame at a time, so the first read may ask for
    more than the header: most frames arrive in a single system call.
    """
    if deadline is not None:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError
    first = os.read(fd, 1 << 16)
    if not first:
        return None
    if len(first) < HEADER.size:
        rest = read_exact(fd, HEADER.size - len(first), deadline)
        if rest is None:
            return None
        first += rest
    (size,) = HEADER.unpack_from(first)
    if size > limit:
        raise FrameTooLarge(f"frame of {size} bytes is over the limit of {limit}")
    body = first[HEADER.size:]
    if len(body) > size:
        raise ProtocolError("bytes beyond the frame")
    if len(body) < size:
        rest = read_exact(fd, size - len(body), deadline)
        if rest is None:
            return None
        body += rest
    return body
