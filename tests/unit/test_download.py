"""download(): resume, restart, verification and clear errors against a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from liger_core.data import download as download_module
from liger_core.data.download import download
from liger_core.errors import DataError

PAYLOAD = bytes(range(256)) * 40  # 10,240 bytes
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class Server:
    """What the test handler serves, how it misbehaves, and what it was asked."""

    base: str = ""
    files: dict[str, bytes] = field(default_factory=lambda: {"/data.bin": PAYLOAD})
    honour_range: bool = True
    truncate_first: int | None = None  # announce the full length but send only this many bytes
    delay_s: float = 0.0
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    bytes_sent: list[int] = field(default_factory=list)
    handled: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    def url(self, path: str = "/data.bin") -> str:
        return self.base + path

    def sent(self) -> list[int]:
        """``bytes_sent`` once every request so far has been answered: the client can finish
        reading before the handler thread records what it wrote."""
        for _ in self.requests:
            assert self.handled.acquire(timeout=5), "a request was never answered"
        return self.bytes_sent


def _handler(state: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                self._serve()
            except ConnectionError:  # the client gave up (timeout test)
                pass
            finally:
                state.handled.release()

        def _serve(self) -> None:
            range_header = self.headers.get("Range")
            state.requests.append((self.path, range_header))
            time.sleep(state.delay_s)
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404, "Not Found")
                return
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
            if state.honour_range and match:
                start = int(match.group(1))
                if start >= len(body):
                    self.send_error(416, "Range Not Satisfiable")
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            chunk = body[start:]
            self.send_header("Content-Length", str(len(chunk)))
            self.end_headers()
            if state.truncate_first is not None:
                chunk, state.truncate_first = chunk[: state.truncate_first], None
                self.close_connection = True
            self.wfile.write(chunk)
            state.bytes_sent.append(len(chunk))

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download_module, "_BACKOFF_S", 0.0)


def test_full_download(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "data.bin"
    assert download(server.url(), dest, sha256=PAYLOAD_SHA, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "sub" / "data.bin.part").exists()
    assert server.requests == [("/data.bin", None)]


def test_resumes_from_part_file(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:4000])

    download(server.url(), dest, expected_size=len(PAYLOAD), progress=False)

    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/data.bin", "bytes=4000-")]
    assert server.sent() == [len(PAYLOAD) - 4000]


def test_restarts_when_server_ignores_range(server: Server, tmp_path: Path) -> None:
    server.honour_range = False
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(b"stale bytes from another version")

    download(server.url(), dest, sha256=PAYLOAD_SHA, progress=False)

    assert dest.read_bytes() == PAYLOAD  # not appended to the stale prefix
    assert server.requests == [("/data.bin", "bytes=32-")]
    assert server.sent() == [len(PAYLOAD)]


def test_part_longer_than_file_starts_over(server: Server, tmp_path: Path) -> None:
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD + b"extra")

    download(server.url(), tmp_path / "data.bin", sha256=PAYLOAD_SHA, progress=False)

    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
    resume = f"bytes={len(PAYLOAD) + 5}-"
    assert server.requests == [("/data.bin", resume), ("/data.bin", None)]


def test_file_url_and_bad_url(tmp_path: Path) -> None:
    source = tmp_path / "mirror.bin"
    source.write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "data.bin"
    download(source.as_uri(), dest, sha256=PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    with pytest.raises(DataError, match=r"download no-scheme: unknown url type: 'no-scheme'"):
        download("no-scheme", tmp_path / "x.bin", progress=False)


def test_dropped_connection_is_retried_with_resume(server: Server, tmp_path: Path) -> None:
    server.truncate_first = 3000
    dest = tmp_path / "data.bin"

    download(server.url(), dest, sha256=PAYLOAD_SHA, progress=False)

    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/data.bin", None), ("/data.bin", "bytes=3000-")]


def test_sha256_mismatch_raises_and_leaves_nothing(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    wrong = "0" * 64
    with pytest.raises(DataError) as err:
        download(server.url(), dest, sha256=wrong, progress=False)
    assert str(err.value) == (f"download of {server.url()} is corrupt: expected sha256 {wrong}, got {PAYLOAD_SHA}")
    assert list(tmp_path.iterdir()) == []


def test_size_mismatch_raises(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"is corrupt: expected 99 bytes, got 10240$"):
        download(server.url(), tmp_path / "data.bin", expected_size=99, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_404_is_a_clear_data_error_without_retries(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "missing.bin"
    with pytest.raises(DataError) as err:
        download(server.url("/missing.bin"), dest, progress=False)
    assert str(err.value) == (
        f"could not download {server.base}/missing.bin: HTTP 404 Not Found; place the file at {dest} manually"
    )
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert len(server.requests) == 1
    assert not dest.exists()


def test_connection_refused_retries_then_fails(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before download() connects
    dest = tmp_path / "data.bin"
    pattern = rf"could not download http://127\.0\.0\.1:{port}/x: .*refused"
    with pytest.raises(DataError, match=pattern):
        download(f"http://127.0.0.1:{port}/x", dest, progress=False)
    assert not dest.exists()


def test_timeout_is_a_data_error(server: Server, tmp_path: Path) -> None:
    server.delay_s = 0.5
    with pytest.raises(DataError, match=r"could not download .*: timed out; place the file at"):
        download(server.url(), tmp_path / "data.bin", timeout=0.1, retries=1, progress=False)
    assert len(server.requests) == 2


def test_existing_dest_is_not_downloaded_again(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"already here")
    sha = hashlib.sha256(b"already here").hexdigest()

    assert download(server.url(), dest, progress=False) == dest
    assert download(server.url(), dest, sha256=sha, progress=False) == dest
    assert server.requests == []
    assert dest.read_bytes() == b"already here"


def test_existing_dest_with_wrong_checksum_is_replaced(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"corrupt copy")
    download(server.url(), dest, sha256=PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/data.bin", None)]
