"""The sandboxed process's side of the conversation, as the server reads it: its answer on
the stdout pipe (see `_sandboxed` for the messages), its effects recorded as they come, and the
tail of what it printed. Everything here is hostile input: sizes are bounded before reading.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from modelyard.core.errors import InvalidArgument, ModelyardError

CHUNK = 1024 * 1024
MAX_HEADER = 4 * 1024 * 1024  # one message line (an effect's value included)
MAX_DEFINITION = 8 * 1024 * 1024
MAX_JSON_RESULT = 64 * 1024 * 1024  # a JSON output is read into memory: bounded
MAX_PICKLE_RESULT = 1024 * 1024 * 1024  # a pickle is spooled to disk, then stored
MAX_EFFECTS = 1000  # per attempt: each is a database write
TAIL_BYTES = 8192  # of what the code printed, kept for the error message (never more)


@dataclass
class Answer:
    definition: bytes | None = None
    result: str | None = None  # "json" | "pickle"
    json_text: bytes | None = None
    pickle_path: Path | None = None
    error: dict[str, Any] | None = None
    garbled: str | None = None  # the pipe said something that is not the protocol
    effects: list[str] = field(default_factory=list)


class Reader(threading.Thread):
    """Reads the sandboxed process's answer off its stdout; records its effects as they come."""

    def __init__(self, stream: IO[bytes], box: Path,
                 record: Callable[[str, Any], None] | None) -> None:
        super().__init__(daemon=True, name="modelyard-sandbox-pipe")
        self.stream, self.box, self.record = stream, box, record
        self.answer = Answer()

    def run(self) -> None:
        try:
            self._read()
        except ModelyardError as e:
            self.answer.garbled = e.message
        except Exception as e:  # noqa: BLE001 - anything the pipe says wrong ends the answer
            self.answer.garbled = f"{type(e).__name__}: {e}"
        finally:
            try:
                while self.stream.read(CHUNK):  # drain: a writer must never block on us
                    pass
            except (OSError, ValueError):
                pass
            self.stream.close()

    def _read(self) -> None:
        a = self.answer
        while True:
            line = self.stream.readline(MAX_HEADER + 1)
            if not line:
                return
            if len(line) > MAX_HEADER or not line.endswith(b"\n"):
                raise InvalidArgument("a message on the pipe is too long")
            header = json.loads(line)
            if not isinstance(header, dict):
                raise InvalidArgument("a message on the pipe is not an object")
            if "effect" in header:
                self._effect(header)
            elif "error" in header:
                a.error = {k: header.get(k) for k in ("error", "code", "details", "traceback")}
                return
            elif "definition" in header:
                a.definition = self._exact(_size(header["definition"], MAX_DEFINITION))
                return
            elif header.get("result") == "json":
                a.json_text = self._exact(_size(header.get("size"), MAX_JSON_RESULT))
                a.result = "json"
                return
            elif header.get("result") == "pickle":
                a.pickle_path = self._spool(_size(header.get("size"), MAX_PICKLE_RESULT))
                a.result = "pickle"
                return
            else:
                raise InvalidArgument("an unknown message on the pipe")

    def _effect(self, header: dict[str, Any]) -> None:
        key, seq = header.get("effect"), header.get("seq")
        if self.record is None or not isinstance(key, str) or len(key) > 200 or \
                not isinstance(seq, int) or isinstance(seq, bool) or not 0 < seq < 10**9:
            raise InvalidArgument("a malformed effect on the pipe")
        if len(self.answer.effects) >= MAX_EFFECTS:
            raise InvalidArgument(f"the step recorded more than {MAX_EFFECTS} effects")
        self.record(key, header.get("value"))  # durable before the step goes on
        ack = self.box / "in" / "acks" / str(seq)
        ack.touch()
        ack.chmod(0o644)
        self.answer.effects.append(key)

    def _exact(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(data) != n:
            raise InvalidArgument("the answer was cut short")
        return data

    def _spool(self, n: int) -> Path:
        path = self.box / "result.pkl"
        left = n
        with open(path, "wb") as f:
            while left:
                chunk = self.stream.read(min(CHUNK, left))
                if not chunk:
                    raise InvalidArgument("the answer was cut short")
                f.write(chunk)
                left -= len(chunk)
        return path


def _size(value: Any, limit: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgument("an answer without a valid size")
    if value > limit:
        raise InvalidArgument(f"the answer is {value} bytes, more than the {limit} a step may "
                              "return; write large results to a dataset or the model registry")
    return value


class Tail(threading.Thread):
    """Reads a stream to its end, keeping only its last TAIL_BYTES."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(daemon=True, name="modelyard-sandbox-log")
        self.stream = stream
        self.kept = b""

    def run(self) -> None:
        try:
            while chunk := self.stream.read1(CHUNK):  # type: ignore[attr-defined]
                self.kept = (self.kept + chunk)[-TAIL_BYTES:]
        except (OSError, ValueError):
            pass
        finally:
            self.stream.close()

    def text(self, n: int = 1500) -> str:
        """The last `n` bytes as text, starting at a line's beginning where one is in reach."""
        kept = self.kept[-n:]
        if len(self.kept) > n and b"\n" in kept[:200]:
            kept = kept[kept.index(b"\n") + 1:]  # no half line at the top
        return kept.decode("utf-8", "replace").strip()


