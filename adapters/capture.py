"""Wire capture: every REST exchange and WebSocket frame of a session, beside its audit trail (issue 22).

The composition root (``adapters.bootstrap.BrokerLink.captured``) wraps the two things every adapter talks
through — the httpx transport factory and the WebSocket opener — so no adapter knows it is recorded. A
capture is one gzip file per session (``RunLayout.capture_dir``), JSON lines, append-only, flushed record by
record (a kill -9 loses at most the record being written); its first record is a versioned header. Format:
docs/capture-format.md. Credentials never reach the file: request headers are not recorded, response headers
only from an allow-list, and every string (bodies, queries, frames) has the session's secrets and any bearer
token replaced by ``[REDACTED]``.

Bounded: a session stops recording frames at ``max_mb`` (compressed; a ``limit`` record says so) and opening a
session deletes the oldest capture files beyond ``keep_sessions``. Only capture files are ever deleted here.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import gzip
import json
import logging
import os
import re
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import msgpack
import trio_websocket

FORMAT_NAME: Final = "ttlive-capture"
FORMAT_VERSION: Final = 1
SUFFIX: Final = ".capture.jsonl.gz"
REDACTED: Final = "[REDACTED]"
RESPONSE_HEADERS: Final = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after",
                           "content-type", "date", "x-request-id")
_BEARER: Final = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")
MB: Final = 1024 * 1024
log = logging.getLogger("ttlive.capture")


class CaptureError(Exception):
    """A capture that cannot be read: the message names the file and the record (line) number."""


# --- scrubbing ------------------------------------------------------------------------------------------------


class Scrubber:
    """Replaces the session's secrets (and any bearer token) in every string of a decoded value."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return _BEARER.sub("Bearer " + REDACTED, value) if "earer" in value else value

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        if isinstance(value, bytes):
            return self.value(_decode_bytes(value))
        if isinstance(value, msgpack.Timestamp):
            return {"$ts": value.to_unix_nano()}
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.text(str(value))


def _decode_bytes(data: bytes) -> Any:
    try:
        return {"$text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"$b64": base64.b64encode(data).decode("ascii")}


def decode_payload(data: str | bytes, scrub: Scrubber) -> tuple[str, Any]:
    """A frame or body as (encoding, scrubbed value): json, msgpack, text or b64 (what it could be read as)."""
    if isinstance(data, str):
        try:
            return "json", scrub.value(json.loads(data))
        except ValueError:
            return "text", scrub.text(data)
    if not data:
        return "empty", None
    try:
        return "json", scrub.value(json.loads(data))
    except ValueError:
        pass
    try:
        return "msgpack", scrub.value(msgpack.unpackb(data, raw=False, strict_map_key=False))
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, TypeError):
        pass
    try:
        return "text", scrub.text(data.decode("utf-8"))
    except UnicodeDecodeError:
        text = scrub.text(data.decode("latin-1"))  # a secret inside binary noise is still caught
        return "b64", base64.b64encode(text.encode("latin-1")).decode("ascii")


# --- the writer -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptureSettings:
    """``[capture]`` resolved for one run: on or off, the per-session size cap and the retention."""

    enabled: bool
    max_mb: float = 64.0
    keep_sessions: int = 20


class CaptureWriter:
    """One session's capture file: records appended as JSON lines, each flushed (gzip sync flush)."""

    def __init__(self, directory: Path, *, secrets: Iterable[str], header: dict[str, Any], max_mb: float = 64.0,
                 keep_sessions: int = 20, wall_ns: Callable[[], int] = time.time_ns,
                 mono_ns: Callable[[], int] = time.monotonic_ns, session: str | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._wall, self._mono = wall_ns, mono_ns
        self.scrub = Scrubber(secrets)
        self.max_bytes = int(max_mb * MB)
        stamp = dt.datetime.fromtimestamp(wall_ns() / 1e9, tz=dt.UTC).strftime("%Y%m%dT%H%M%S")
        self.session = session or f"{stamp}-{os.getpid()}"
        self.path = self.directory / f"{self.session}{SUFFIX}"
        self.deleted = prune(self.directory, keep=max(0, keep_sessions - 1))  # room for this session
        # A new file per session (a simulation re-run under the same session name replaces its own capture).
        self._raw = open(self.path, "wb")  # noqa: SIM115 - held for the session, closed by close()
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="wb", mtime=0)
        self._seq = 0
        self._conns = 0
        self.records = 0
        self.limited = False
        self.closed = False
        self.write({"t": "header", "format": FORMAT_NAME, "version": FORMAT_VERSION, "session": self.session,
                    **header})

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def next_conn(self) -> int:
        self._conns += 1
        return self._conns

    @property
    def size_bytes(self) -> int:
        return self._raw.tell()

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (wall and monotonic time added); past the size cap only a ``limit`` record."""
        if self.closed:
            return
        if self.size_bytes >= self.max_bytes and record.get("t") not in ("header", "end"):
            if self.limited:
                return
            self.limited = True
            record = {"t": "limit", "max_mb": self.max_bytes / MB}
        line = json.dumps({"wall_ns": self._wall(), "mono_ns": self._mono(), **record}, separators=(",", ":"),
                          default=str)
        line = self.scrub.text(line)  # the backstop: whatever a caller passed, no secret reaches the file
        try:
            self._gz.write(line.encode("utf-8") + b"\n")
            self._gz.flush(zlib.Z_SYNC_FLUSH)
        except OSError as exc:  # a full disk stops the recording, never the session it records
            log.error("wire capture %s stopped: %s", self.path, exc)
            self.closed = True
            return
        self.records += 1

    def close(self) -> None:
        self.write({"t": "end", "records": self.records + 1})
        self.closed = True
        with contextlib.suppress(OSError):
            self._gz.close()
        with contextlib.suppress(OSError):
            self._raw.close()


def prune(directory: Path, *, keep: int) -> list[Path]:
    """Delete the oldest capture files beyond ``keep`` (by name: sessions are named by their UTC start).
    Only ``*.capture.jsonl.gz`` files: nothing else in the directory (never an audit trail) is touched."""
    files = sorted(p for p in directory.glob(f"*{SUFFIX}") if p.is_file())
    doomed = files[: max(0, len(files) - keep)]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


# --- the transport and WebSocket wrappers ---------------------------------------------------------------------


class CaptureTransport(httpx.AsyncBaseTransport):
    """An httpx transport that records each exchange around the real one (network or the fake's)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, writer: CaptureWriter) -> None:
        self._inner = inner
        self._writer = writer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        w = self._writer
        seq = w.next_seq()
        body = await request.aread()
        enc, decoded = decode_payload(body, w.scrub)
        w.write({"t": "http_req", "seq": seq, "method": request.method, "host": request.url.host,
                 "path": request.url.path, "query": w.scrub.value(request.url.params.multi_items()),
                 "enc": enc, "body": decoded})
        mono0 = time.monotonic_ns()
        try:
            response = await self._inner.handle_async_request(request)
            try:
                raw = response.content  # built in memory (the fake's transport): already read
            except httpx.ResponseNotRead:
                raw = b"".join([chunk async for chunk in response.aiter_raw()])  # the network: still encoded
        except BaseException as exc:
            w.write({"t": "http_resp", "seq": seq, "error": type(exc).__name__,
                     "elapsed_ns": time.monotonic_ns() - mono0})
            raise
        await response.aclose()
        rebuilt = httpx.Response(response.status_code, headers=response.headers, content=raw, request=request,
                                 extensions=response.extensions)
        enc, decoded = decode_payload(rebuilt.content, w.scrub)
        headers = {k: w.scrub.text(v) for k, v in response.headers.items() if k.lower() in RESPONSE_HEADERS}
        w.write({"t": "http_resp", "seq": seq, "status": response.status_code, "headers": headers, "enc": enc,
                 "body": decoded, "elapsed_ns": time.monotonic_ns() - mono0})
        return rebuilt

    async def aclose(self) -> None:
        await self._inner.aclose()


class CapturedSocket:
    """A trio-websocket connection whose frames in and out are recorded; everything else passes through."""

    def __init__(self, ws: Any, writer: CaptureWriter, conn: int) -> None:
        self._ws, self._writer, self._conn = ws, writer, conn
        self.close_recorded = False

    async def get_message(self) -> str | bytes:
        try:
            data: str | bytes = await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            reason = exc.reason
            self._record_close(1006 if reason is None else reason.code,
                               "" if reason is None else (reason.reason or ""), by="server")
            raise
        enc, decoded = decode_payload(data, self._writer.scrub)
        self._writer.write({"t": "ws_in", "conn": self._conn, "enc": enc, "data": decoded})
        return data

    async def send_message(self, message: str | bytes) -> None:
        enc, decoded = decode_payload(message, self._writer.scrub)
        self._writer.write({"t": "ws_out", "conn": self._conn, "enc": enc, "data": decoded})
        await self._ws.send_message(message)

    def _record_close(self, code: int, reason: str, *, by: str) -> None:
        if not self.close_recorded:
            self.close_recorded = True
            self._writer.write({"t": "ws_close", "conn": self._conn, "code": code, "reason": reason, "by": by})

    def __getattr__(self, name: str) -> Any:  # ping, aclose, closed, ...: the real connection's
        return getattr(self._ws, name)


def capture_ws_connect(inner: Callable[..., AbstractAsyncContextManager[Any]],
                       writer: CaptureWriter) -> Callable[..., AbstractAsyncContextManager[Any]]:
    """Wrap a WebSocket opener (trio-websocket's or the fake's): opens, frames and closes are recorded."""

    @asynccontextmanager
    async def connect(url: str, *, extra_headers: list[tuple[bytes, bytes]] | None = None) -> AsyncIterator[Any]:
        conn = writer.next_conn()
        path = urlsplit(url).path
        socket: CapturedSocket | None = None
        try:
            async with inner(url, extra_headers=extra_headers) as ws:
                writer.write({"t": "ws_open", "conn": conn, "path": path})
                socket = CapturedSocket(ws, writer, conn)
                try:
                    yield socket
                finally:
                    socket._record_close(1000, "closed by client", by="client")
        except BaseException as exc:
            if socket is None:
                writer.write({"t": "ws_open_failed", "conn": conn, "path": path, "error": type(exc).__name__})
            raise

    return connect


# --- reading ---------------------------------------------------------------------------------------------------


def resolve_capture(path: Path) -> Path:
    """A capture file, or a directory (a run directory or its capture/): its newest session file."""
    if path.is_file():
        return path
    if path.is_dir():
        for directory in (path, path / "capture"):
            files = sorted(directory.glob(f"*{SUFFIX}"))
            if files:
                return files[-1]
        raise CaptureError(f"{path}: no capture file (*{SUFFIX}) in it or in its capture/")
    raise CaptureError(f"{path}: no such capture file or directory")


def read_capture(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a capture file, header first; CaptureError names the file and the record number (the
    line of the decompressed file) of what is wrong. A session killed between two records (no ``end`` record)
    reads fine: every record was flushed whole; a record cut in the middle or corrupt data is an error."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CaptureError(f"{path}: cannot read capture: {exc}") from None
    lines = _gunzip_lines(path, data)
    if not lines:
        raise CaptureError(f"{path}: empty capture (no header record)")
    for line_no, line in enumerate(lines, start=1):
        if not line.endswith(b"\n"):
            raise CaptureError(f"{path}: record {line_no} is truncated (the file ends inside it)")
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise CaptureError(f"{path}: record {line_no} is not JSON: {exc}") from None
        if not isinstance(record, dict) or not isinstance(record.get("t"), str):
            raise CaptureError(f"{path}: record {line_no} has no record type 't'")
        if line_no == 1:
            _check_header(path, record)
        elif record["t"] == "header":
            raise CaptureError(f"{path}: record {line_no} is a second header (two sessions in one file)")
        yield record


def _gunzip_lines(path: Path, data: bytes) -> list[bytes]:
    """Decompress every gzip member; a stream that simply stops (no trailer: a killed writer) keeps what was
    flushed. Corrupt data raises CaptureError naming the record after the last good one."""
    out = bytearray()
    rest = data
    while rest:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out += inflater.decompress(rest)
        except zlib.error as exc:
            good = out.count(b"\n")
            raise CaptureError(f"{path}: corrupt compressed data at record {good + 1}: {exc}") from None
        rest = inflater.unused_data
        if not inflater.eof:
            break
    return bytes(out).splitlines(keepends=True)


def _check_header(path: Path, record: dict[str, Any]) -> None:
    if record.get("t") != "header" or record.get("format") != FORMAT_NAME:
        raise CaptureError(f"{path}: record 1 is not a {FORMAT_NAME} header")
    if record.get("version") != FORMAT_VERSION:
        raise CaptureError(f"{path}: record 1: capture format version {record.get('version')!r} is not supported "
                           f"(this ttlive reads version {FORMAT_VERSION})")
