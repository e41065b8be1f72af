"""Resumable, verified HTTP downloads with only the standard library and tqdm.

Raw data files are large and fetched over flaky links, so an interrupted download keeps
its ``.part`` file and the next attempt asks only for the missing bytes. The final file
appears under its real name only after its size (and checksum, when known) is verified,
so a half-written file is never mistaken for a good one. Every failure is a
:class:`DataError` naming the URL, because operators need to know what to fetch by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from liger_core.errors import DataError

_CHUNK = 1 << 20
_BACKOFF_S = 1.0
_USER_AGENT = "liger-download/1"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class _Failure(Exception):
    """Why one attempt failed; ``retry`` marks transient causes (the ``.part`` is kept)."""

    def __init__(self, reason: str, *, retry: bool = True) -> None:
        super().__init__(reason)
        self.retry = retry


def download(
    url: str,
    dest: Path,
    *,
    expected_size: int | None = None,
    sha256: str | None = None,
    timeout: float = 60,
    progress: bool = True,
    retries: int = 2,
) -> Path:
    """Fetch ``url`` into ``dest`` unless a verified copy is already there; return ``dest``.

    ``retries`` extra attempts are made on connection errors, timeouts, truncated bodies
    and HTTP 5xx, each resuming from the bytes already on disk.
    """
    dest = Path(dest)
    if dest.exists() and _is_valid(dest, expected_size, sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")

    for attempt in range(retries + 1):
        try:
            total = _fetch(url, part, dest.name, timeout, progress)
            break
        except _Failure as exc:
            if not exc.retry or attempt == retries:
                raise DataError(f"could not download {url}: {exc}; place the file at {dest} manually") from None
            time.sleep(_BACKOFF_S * (attempt + 1))

    _verify(url, part, total, expected_size, sha256)
    os.replace(part, dest)
    return dest


def _is_valid(path: Path, expected_size: int | None, sha256: str | None) -> bool:
    """An existing file counts as done unless a given size or checksum contradicts it."""
    if expected_size is not None and path.stat().st_size != expected_size:
        return False
    return sha256 is None or _sha256(path) == sha256.lower()


def _fetch(url: str, part: Path, label: str, timeout: float, progress: bool) -> int | None:
    """Append the missing bytes to ``part``; return the full size the server announced."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT} | ({"Range": f"bytes={offset}-"} if offset else {})
    try:
        request = urllib.request.Request(url, headers=headers)
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            # The .part is already complete or longer than the file: start over.
            part.unlink()
            raise _Failure(f"HTTP 416 for a resume at byte {offset}") from None
        if exc.code >= 500:
            raise _Failure(f"HTTP {exc.code} {exc.reason}") from None
        raise _Failure(f"HTTP {exc.code} {exc.reason}", retry=False) from None
    except urllib.error.URLError as exc:
        raise _Failure(str(exc.reason)) from None
    except ValueError as exc:  # not a URL at all: retrying cannot help
        raise _Failure(str(exc), retry=False) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Failure(str(exc) or type(exc).__name__) from None

    with response:
        # A ``file://`` response has no status; treat it like a plain 200.
        if (response.status or 200) == 206:
            total = _resume_total(response.headers.get("Content-Range"), offset, part)
            mode = "ab"
        else:
            offset, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        written = offset
        try:
            with (
                open(part, mode) as out,
                tqdm(
                    total=total,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=label,
                    disable=not progress,
                ) as bar,
            ):
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            raise _Failure(f"connection lost after {written} bytes: {exc}") from None
    if total is not None and written < total:
        raise _Failure(f"connection closed after {written} of {total} bytes")
    return total


def _resume_total(content_range: str | None, offset: int, part: Path) -> int | None:
    """Total size from a 206 answer, which must continue exactly where ``part`` ends."""
    match = _CONTENT_RANGE.fullmatch((content_range or "").strip())
    if not match or int(match.group(1)) != offset:
        part.unlink()
        raise _Failure(f"answer Content-Range {content_range!r} to a resume at byte {offset}")
    return None if match.group(3) == "*" else int(match.group(3))


def _verify(url: str, part: Path, total: int | None, expected_size: int | None, sha256: str | None) -> None:
    """Reject a finished ``.part`` whose size or checksum is wrong, deleting it."""
    size = part.stat().st_size
    problems = []
    if total is not None and size != total:
        problems.append(f"size {size} bytes but the server announced {total}")
    if expected_size is not None and size != expected_size:
        problems.append(f"expected {expected_size} bytes, got {size}")
    if sha256 is not None and not problems:
        got = _sha256(part)
        if got != sha256.lower():
            problems.append(f"expected sha256 {sha256.lower()}, got {got}")
    if problems:
        part.unlink()
        raise DataError(f"download of {url} is corrupt: {'; '.join(problems)}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()
