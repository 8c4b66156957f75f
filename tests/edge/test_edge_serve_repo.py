"""`tributary edge serve-repo` as a process: bad paths get 404 (never 500, never a file outside the repository),
and its errors are one `error:` line like every other command's."""

from __future__ import annotations

import http.client
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.edge.cli import edge
from pipelines.edge.server import free_port
from tests.conftest import stop_process

TRIBUTARY = str(Path(sys.executable).with_name("tributary"))
SECRET = b"outside the repository"
ROOT_JSON = b'{"signed": {"_type": "root"}}'


def _serve(root: Path | str, port: int) -> subprocess.Popen:
    return subprocess.Popen([TRIBUTARY, "edge", "serve-repo", "--root", str(root), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _first_line(proc: subprocess.Popen, timeout: float = 30.0) -> str:
    """The first stdout line, waiting at most `timeout` seconds (the process may also die first)."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if selector.select(left):
                return proc.stdout.readline().decode()
    raise AssertionError(f"serve-repo printed nothing in {timeout}s")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A repository folder beside a secret file (and a symlink out to it), served by a real process."""
    top = tmp_path_factory.mktemp("serve_repo")
    (top / "secret.txt").write_bytes(SECRET)
    root = top / "repository"
    (root / "metadata").mkdir(parents=True)
    (root / "targets").mkdir()
    (root / "metadata" / "root.json").write_bytes(ROOT_JSON)
    (root / "targets" / "bundle.tar").write_bytes(bytes(range(256)) * 4)
    (root / "targets" / "escape.txt").symlink_to(top / "secret.txt")
    port = free_port()
    proc = _serve(root, port)
    try:
        line = _first_line(proc)
        assert line.startswith("serving "), (line, proc.stderr.read() if proc.poll() is not None else "")
        yield port
    finally:
        stop_process(proc, timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def _get(port: int, target: str, headers: dict | None = None) -> tuple[int, bytes]:
    """GET with the request target sent exactly as given (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_serves_files_and_ranges(served):
    assert _get(served, "/metadata/root.json") == (200, ROOT_JSON)
    status, body = _get(served, "/targets/bundle.tar", {"Range": "bytes=10-19"})
    assert (status, body) == (206, bytes(range(10, 20)))


@pytest.mark.parametrize("target", [
    "/%00",
    "/metadata/root.json%00.txt",
    "/metadata/%00/root.json",
    "/" + "a" * 4999,                                     # 5,000 characters, one segment
    "/" + "/".join(["b" * 199] * 25),                     # 5,000 characters, no segment over 255 bytes
    "/metadata/" + "c" * 256,                             # one segment of 256 bytes
    "/metadata/" + "%C3%A9" * 128,                        # 128 characters, 256 bytes in UTF-8
    "/metadata/" + "d" * 300 + "/root.json",
    "/..%2fsecret.txt",
    "/%2e%2e/secret.txt",
    "/%2e%2e%2fsecret.txt",
    "/metadata/%2e%2e/%2e%2e/secret.txt",
    "/metadata%2f..%2f..%2fsecret.txt",
    "/%2fetc%2fpasswd",
    "//etc/passwd",
    "/..%5csecret.txt",
    "/metadata\\..\\..\\secret.txt",
    "/metadata%5c..%5c..%5csecret.txt",
    "/targets/escape.txt",                                # a symlink out of the repository
    "/",
    "/metadata",
    "/metadata/",
    "/targets/.",
    "/metadata/root.json/",
    "/metadata/root.json/x",
    "/missing.json",
], ids=lambda t: t if len(t) <= 40 else f"{t[:24]}...({len(t)} chars)")
def test_bad_paths_are_not_found(served, target):
    status, body = _get(served, target)
    assert status in (400, 404), (status, body[:200])
    assert SECRET not in body


def test_over_long_path_on_a_range_request_is_not_found(served):
    status, _ = _get(served, "/targets/" + "e" * 5000, {"Range": "bytes=0-9"})
    assert status == 404


def _cli(*args: str) -> tuple[int, str]:
    """Exit code and stderr of `tributary edge ...` (in process: the error paths never start the server)."""
    result = CliRunner().invoke(edge, list(args))
    return result.exit_code, result.stderr


def _one_error_line(stderr: str) -> bool:
    return stderr.startswith("error: ") and len(stderr.strip().splitlines()) == 1


def test_missing_root_is_one_error_line(tmp_path):
    code, stderr = _cli("serve-repo", "--root", str(tmp_path / "nowhere"), "--port", str(free_port()))
    assert code == 1 and _one_error_line(stderr), (code, stderr)
    assert "nowhere" in stderr


def test_root_that_is_a_file_is_one_error_line(tmp_path):
    (tmp_path / "file").write_text("x")
    code, stderr = _cli("serve-repo", "--root", str(tmp_path / "file"), "--port", str(free_port()))
    assert code == 1 and _one_error_line(stderr), (code, stderr)


def test_port_in_use_is_one_error_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, stderr = _cli("serve-repo", "--root", str(tmp_path), "--port", str(port))
    assert code == 1 and _one_error_line(stderr), (code, stderr)
    assert f"127.0.0.1:{port}" in stderr and "in use" in stderr
