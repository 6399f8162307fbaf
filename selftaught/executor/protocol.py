"""Length-prefixed frames over pipes, shared by the trainer and the workers.

A frame is a 4-byte big-endian length and that many bytes. Several frames may be
in a pipe at once (the trainer keeps a worker's next request queued while it
runs the current one), so readers buffer.

Standard library only: the zygote imports this file as a top-level module.
"""

import os
import struct

HEADER = struct.Struct(">I")
MAX_FRAME = 64 << 20  # a peer that announces more is broken or hostile


class FrameTooLarge(ValueError):
    """The peer announced a frame over the reader's limit."""


def write_frame(fd, payload: bytes) -> None:
    data = HEADER.pack(len(payload)) + payload
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class FrameReader:
    """Frames from one pipe: fill() reads what is there, next_frame() cuts them."""

    def __init__(self, fd: int, limit: int = MAX_FRAME):
        self.fd, self.limit, self.buf = fd, limit, bytearray()

    def fill(self) -> bool:
        """Read what the pipe holds (blocks if it is empty); False on end of file."""
        chunk = os.read(self.fd, 1 << 16)
        self.buf += chunk
        return bool(chunk)

    def next_frame(self) -> bytes | None:
        """The next complete frame's payload, or None until more bytes arrive."""
        if len(self.buf) < HEADER.size:
            return None
        (size,) = HEADER.unpack_from(self.buf)
        if size > self.limit:
            raise FrameTooLarge(f"frame of {size} bytes is over the limit of {self.limit}")
        end = HEADER.size + size
        if len(self.buf) < end:
            return None
        payload = bytes(self.buf[HEADER.size:end])
        del self.buf[:end]
        return payload

    def read(self) -> bytes | None:
        """Block until a whole frame is there; None on end of file."""
        while True:
            frame = self.next_frame()
            if frame is not None:
                return frame
            if not self.fill():
                return None
