"""Local files, directories and stdin as a source of blobs.

A directory is walked recursively in name order; CloudTrail archive names start with the
account and end with the delivery time, so name order is close to event-time order and the
reorder buffer absorbs the rest. ``-`` reads stdin line by line (JSON Lines).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from detector import decode
from detector.errors import SourceError

SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".gz", ".ndjson")


# CloudTrail names its files <account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<random>.json.gz
_DELIVERY = re.compile(r"_(\d{8}T\d{4}Z)_")


def delivery_order(path: Path) -> tuple[str, str]:
    """Sort key: the delivery time in a CloudTrail file name, then the path.

    Name order alone walks one account/region's whole history before the next one's, which
    would push every other account's events behind the watermark.
    """
    m = _DELIVERY.search(path.name)
    return (m.group(1) if m else "", str(path))


def list_files(path: Path) -> list[Path]:
    """Files under ``path`` that may hold CloudTrail (digest folders included: decode sets them aside)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SourceError(f"{path}: no such file or directory")
    return sorted(
        (p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(SUFFIXES)), key=delivery_order
    )


# What `detector simulate` writes beside its AWSLogs/ (labels, plan): not CloudTrail, set aside.
SIMULATOR_FILES = frozenset({"labels.jsonl", "simulation.json"})
SIMULATOR_METADATA = "simulator_metadata"


def is_simulator_metadata(path: Path) -> bool:
    """``labels.jsonl`` / ``simulation.json`` in a directory ``detector simulate`` wrote (it has simulation.json)."""
    return path.name in SIMULATOR_FILES and (path.parent / "simulation.json").is_file()


class SetAside(bytes):
    """An input recognised as not CloudTrail and skipped unread, standing in for its blob.

    ``Ingest`` counts it under ``kind`` in ``skipped`` (and ``detector_records_skipped_total``),
    like digest files, rather than rejecting it as an unknown envelope.
    """

    kind: str = SIMULATOR_METADATA

    @classmethod
    def of(cls, kind: str) -> SetAside:
        blob = cls(b"")
        blob.kind = kind
        return blob


class Unreadable(bytes):
    """An input that could not be read, standing in for its blob: empty, with the reason.

    A file in a directory walk that cannot be read (permissions, an I/O error, a gzip stream
    cut short while streaming) is one bad input among many: ``Ingest`` counts and
    dead-letters it as ``reason`` (``unreadable``, or ``oversized`` past the blob cap) and the
    run goes on with the other files.
    """

    detail: str
    reason: str = "unreadable"

    @classmethod
    def because(cls, exc: BaseException) -> Unreadable:
        blob = cls(b"")
        blob.detail = f"cannot read: {getattr(exc, 'strerror', None) or exc}"
        if isinstance(exc, TooLarge):
            blob.reason = "oversized"
        return blob


class TooLarge(OSError):
    """A blob over the cap (``decode.MAX_BLOB_BYTES``), found while reading it, never after."""


def read_capped(stream: Any, cap: int | None = None, size: int | None = None) -> bytes:
    """All of ``stream`` (a file, an S3 ``Body``), refusing to hold more than ``cap`` bytes
    (default ``decode.MAX_BLOB_BYTES``).

    ``size`` (a file's ``st_size``, an object's ``ContentLength``) refuses an announced
    oversize before reading anything; the chunked read refuses one that grows or lies.
    """
    cap = decode.MAX_BLOB_BYTES if cap is None else cap
    if size is not None and size > cap:
        raise TooLarge(f"{size} bytes, over the {cap}-byte blob cap")
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(1 << 22)
        if not chunk:
            break
        total += len(chunk)
        if total > cap:
            raise TooLarge(f"more than {cap} bytes, over the blob cap")
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_file(path: Path, cap: int | None = None) -> bytes:
    """A file's bytes, at most ``cap`` of them (``TooLarge`` past that)."""
    with path.open("rb") as f:
        return read_capped(f, cap, os.fstat(f.fileno()).st_size)


def iter_file_blobs(path: Path) -> Iterator[tuple[bytes, str]]:
    """Each file's bytes, in ``list_files`` order; a named file that cannot be read is an error."""
    files = list_files(path)
    for f in files:
        if is_simulator_metadata(f):
            yield SetAside.of(SIMULATOR_METADATA), str(f)
            continue
        try:
            data: bytes = read_file(f)
        except TooLarge as exc:  # a bad input like any other, named or not: counted, the run goes on
            data = Unreadable.because(exc)
        except OSError as exc:
            if f == path:  # asked for by name: say so and stop
                raise SourceError(f"{f}: cannot read: {exc.strerror or exc}") from exc
            data = Unreadable.because(exc)
        yield data, str(f)


def iter_stdin_blobs(lines_per_blob: int = 1000) -> Iterator[tuple[bytes, str]]:
    """stdin as JSON Lines, grouped so a blob is many events but a bad line stays local."""
    buf: list[bytes] = []
    first = 1
    for n, line in enumerate(sys.stdin.buffer, start=1):
        buf.append(line)
        if len(buf) >= lines_per_blob:
            yield b"".join(buf), f"stdin#lines={first}-{n}"
            buf, first = [], n + 1
    if buf:
        yield b"".join(buf), f"stdin#lines={first}-{first + len(buf) - 1}"
