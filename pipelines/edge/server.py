"""The bundle server: the repository folder over HTTP with byte ranges, and faults a fleet really meets.

Starlette's FileResponse honours Range too; this handler is written by hand (about forty lines) because the
simulator must break the body on purpose: cut the connection after some bytes, flip bytes, or end a
response early as if the file were shorter. Faults are planned per device (the agent sends its id in
`X-Device-Id`) and consumed one per request for a bundle, so a fault hits a chosen download exactly once.
Which file a request names is not written by hand: Starlette's StaticFiles resolves it (see `_lookup`).
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import stat
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope
import uvicorn

FaultKind = Literal["cut", "corrupt", "truncate"]
DEVICE_HEADER = "x-device-id"
CHUNK = 16 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class _Cut(Exception):
    """Raised inside a streaming body: uvicorn drops the connection mid-response."""


class ServerError(Exception):
    """The bundle server could not start (the port is taken, the host is not this machine's...)."""


@dataclass
class FaultPlan:
    """Faults per device, consumed in order by the device's next bundle (targets/) requests."""

    faults: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    lock: threading.Lock = field(default_factory=threading.Lock)
    served: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Body bytes sent per device (metadata and bundles), for the resume-efficiency figure."""

    def add(self, device: str, kind: FaultKind, *, at: float = 0.5) -> None:
        """The device's next bundle response breaks after `at` of its bytes."""
        with self.lock:
            self.faults[device].append((kind, at))

    def take(self, device: str | None) -> tuple[str, float] | None:
        if not device:
            return None
        with self.lock:
            queue = self.faults.get(device)
            return queue.popleft() if queue else None

    def count(self, device: str | None, n: int) -> None:
        if device:
            with self.lock:
                self.served[device] += n

    @classmethod
    def from_json(cls, path: str | Path) -> FaultPlan:
        plan = cls()
        for device, items in json.loads(Path(path).read_text()).items():
            for kind, at in items:
                plan.add(device, kind, at=at)
        return plan


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive, or None for the whole file; ValueError when unsatisfiable."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        raise ValueError(header)
    if not match.group(1):
        first, last = max(0, size - int(match.group(2))), size - 1
    else:
        first = int(match.group(1))
        last = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
    if first >= size or first > last:
        raise ValueError(header)
    return first, last


def _lookup(files: StaticFiles, scope: Scope) -> tuple[str, str, int] | None:
    """(path relative to the root, full path, size) of the regular file a request names, or None.

    Starlette's StaticFiles does the resolving: '.' and '..' (also percent-encoded) are removed, absolute paths
    are refused, and a path that resolves outside the root (through a symlink too) is not found. Its errors
    are mapped as StaticFiles maps them: a NUL byte (ValueError) or a name over the file system's limits
    (ENAMETOOLONG) is not found, not a server error. A path ending in '/' names a directory, never a file.
    """
    if scope["path"].endswith("/"):
        return None
    rel = files.get_path(scope)
    try:
        full, found = files.lookup_path(rel)
    except ValueError:
        return None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return None
        raise
    if found is None or not stat.S_ISREG(found.st_mode):
        return None
    return rel.replace(os.sep, "/"), full, found.st_size


def create_app(root: str | Path, plan: FaultPlan | None = None) -> Starlette:
    """An ASGI app serving `root` (the repository folder) read-only, with planned faults on targets/."""
    files = StaticFiles(directory=Path(root).resolve(), check_dir=False)  # its path resolution, not its responses
    plan = plan or FaultPlan()

    async def serve(request: Request) -> Response:
        found = _lookup(files, request.scope)
        if found is None:
            return PlainTextResponse("not found", status_code=404)
        rel, path, size = found
        device = request.headers.get(DEVICE_HEADER)
        try:
            span = _parse_range(request.headers.get("range"), size)
        except ValueError:
            return Response(status_code=416, headers={"content-range": f"bytes */{size}"})
        first, last = span if span else (0, size - 1)
        fault = plan.take(device) if rel.startswith("targets/") else None
        length = last - first + 1
        if fault and fault[0] == "truncate":
            length = max(1, int(length * fault[1]))
        headers = {"accept-ranges": "bytes", "content-length": str(length)}
        if span:
            headers["content-range"] = f"bytes {first}-{first + length - 1}/{size}"
        return StreamingResponse(_body(path, first, length, fault, plan, device), status_code=206 if span else 200,
                                 headers=headers, media_type="application/octet-stream")

    return Starlette(routes=[Route("/{path:path}", serve, methods=["GET"])])


def _body(path: str, first: int, length: int, fault: tuple[str, float] | None, plan: FaultPlan,
          device: str | None) -> Iterator[bytes]:
    """`length` bytes of the file from `first`, in chunks, with the planned fault: cut short, or one byte flipped."""
    sent, cut_after = 0, (int(length * fault[1]) if fault and fault[0] == "cut" else None)
    with open(path, "rb") as handle:
        handle.seek(first)
        while sent < length:
            chunk = handle.read(min(CHUNK, length - sent))
            if cut_after is not None and sent + len(chunk) > cut_after:
                chunk = chunk[: cut_after - sent]
                if chunk:
                    plan.count(device, len(chunk))
                    yield chunk
                raise _Cut(f"fault: cut {device} after {cut_after} bytes")
            if fault and fault[0] == "corrupt" and sent <= length // 2 < sent + len(chunk):
                i = length // 2 - sent
                chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
            sent += len(chunk)
            plan.count(device, len(chunk))
            yield chunk


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class BundleServer:
    """uvicorn in a background thread on a free loopback port (tests, the simulator, `edge serve-repo`).

    The listening socket is bound here, not by uvicorn (which logs a bind failure and exits its thread), so a
    port in use or an unknown host is a ServerError naming them.
    """

    def __init__(self, root: str | Path, *, plan: FaultPlan | None = None, host: str = "127.0.0.1",
                 port: int | None = None) -> None:
        self.plan = plan or FaultPlan()
        self.host, self.port = host, port or 0
        config = uvicorn.Config(create_app(root, self.plan), host=self.host, port=self.port, log_level="critical",
                                access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.socket: socket.socket | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _listen(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(2048)
        except OSError as exc:
            sock.close()
            reason = exc.strerror or str(exc)
            raise ServerError(f"cannot serve on {self.host}:{self.port}: {reason[:1].lower()}{reason[1:]}") from None
        return sock

    def __enter__(self) -> BundleServer:
        self.socket = self._listen()
        self.port = self.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="bundle-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.__exit__()
                raise ServerError(f"the bundle server did not start on {self.url}")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(5)
        if self.socket is not None:
            self.socket.close()
