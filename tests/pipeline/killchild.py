"""A child process for test_kill: produce through a spooled pipeline into a file-backed sink, or drain.

    python -m tests.pipeline.killchild produce STATE OUT N
    python -m tests.pipeline.killchild drain STATE OUT

The sink appends each delivered id to OUT/delivered.log before answering Delivered (write(2) survives
SIGKILL); the producer appends the last id of each accepted submit_many() to OUT/submitted.log.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from collector.pipeline import Delivered, Pipeline
from tests.pipeline.fake import FakeShipper, ids_of, rec, settings


class FileSink(FakeShipper):
    def __init__(self, out: Path) -> None:
        super().__init__("sink")
        self.fd = os.open(out / "delivered.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    async def send(self, request):
        await asyncio.sleep(0.01)
        os.write(self.fd, "".join(f"{i}\n" for i in ids_of(request.records)).encode())
        return Delivered()


async def main(mode: str, state: Path, out: Path, n: int) -> None:
    sink = FileSink(out)
    s = settings("sink", batch={"max_events": 100, "linger_ms": 5}, spool={"fsync_ms": 200})
    p = Pipeline([sink], {"sink": s}, state)
    await p.start()
    if mode == "produce":
        fd = os.open(out / "submitted.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        for i in range(0, n, 100):
            await p.submit_many([rec(j) for j in range(i, i + 100)])
            os.write(fd, f"{i + 99}\n".encode())
            await asyncio.sleep(0)
        await asyncio.Event().wait()  # until killed
    while p.snapshot()["sink"]["spool_events"]:
        await asyncio.sleep(0.01)
    await p.stop(5)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]) if sys.argv[4:] else 0))
