"""Client calls of the datasets component."""

from __future__ import annotations

import builtins
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from modelyard.core.errors import FailedPrecondition, InvalidArgument, Unavailable
from modelyard.sdk._http import FileBody, Transport

FOLDER_GROUP_ROWS = 5_000  # images per Parquet row group when uploading a folder


class DatasetsAPI:
    """`client.datasets`: typed, versioned datasets and training snapshots."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def _p(self, path: str, project: str | None) -> str:
        return self._t.p(path, project)

    def create(self, name: str, type: str, config: dict[str, Any] | None = None,
               description: str = "", project: str | None = None) -> dict[str, Any]:
        body = {"name": name, "type": type, "config": config or {}, "description": description}
        return self._t.post(self._p("/datasets", project), json=body)  # type: ignore[no-any-return]

    def list(self, limit: int = 50, page_token: str | None = None,
             project: str | None = None) -> dict[str, Any]:
        """One page: `{"items": [...], "next_page_token": ...}`."""
        params: dict[str, Any] = {"limit": limit}
        if page_token:
            params["page_token"] = page_token
        return self._t.get(self._p("/datasets", project), params=params)  # type: ignore[no-any-return]

    def iter(self, project: str | None = None) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self.list(limit=200, page_token=token, project=project)
            yield from page["items"]
            token = page.get("next_page_token")
            if not token:
                return

    def get(self, name: str, project: str | None = None) -> dict[str, Any]:
        return self._t.get(self._p(f"/datasets/{name}", project))  # type: ignore[no-any-return]

    def delete(self, name: str, project: str | None = None) -> None:
        self._t.delete(self._p(f"/datasets/{name}", project))

    def commit_rows(self, name: str, rows: builtins.list[dict[str, Any]], message: str = "",
                    tags: builtins.list[str] | None = None, mode: str = "append",
                    project: str | None = None) -> dict[str, Any]:
        """Append or overwrite rows as one new version (image bytes may be raw; sent base64)."""
        body = {"rows": [_jsonable(r) for r in rows], "mode": mode, "message": message,
                "tags": tags or []}
        return self._t.post(self._p(f"/datasets/{name}/commits", project), json=body)  # type: ignore[no-any-return]

    def delete_rows(self, name: str, where: str | None = None, row_ids: builtins.list[str] | None = None,
                    message: str = "", tags: builtins.list[str] | None = None,
                    project: str | None = None) -> dict[str, Any]:
        body = {"mode": "delete", "where": where, "row_ids": row_ids, "message": message,
                "tags": tags or []}
        return self._t.post(self._p(f"/datasets/{name}/commits", project), json=body)  # type: ignore[no-any-return]

    def replace_rows(self, name: str, rows: builtins.list[dict[str, Any]],
                     where: str | None = None, row_ids: builtins.list[str] | None = None,
                     message: str = "", tags: builtins.list[str] | None = None,
                     project: str | None = None) -> dict[str, Any]:
        """Remove the rows matching `where` or `row_ids` and add `rows`, as one new version."""
        body = {"mode": "replace", "rows": [_jsonable(r) for r in rows], "where": where,
                "row_ids": row_ids, "message": message, "tags": tags or []}
        return self._t.post(self._p(f"/datasets/{name}/commits", project), json=body)  # type: ignore[no-any-return]

    def upload_file(self, name: str, path: str | Path, format: str | None = None,
                    mode: str = "append", message: str = "", tags: builtins.list[str] | None = None,
                    progress: Callable[[int], None] | None = None,
                    project: str | None = None, where: str | None = None,
                    row_ids: builtins.list[str] | None = None) -> dict[str, Any]:
        """Streams a CSV/JSON/JSONL/Parquet file in chunks; `progress(n)` gets each chunk's size.
        `mode` is append, overwrite or replace (with `where` or `row_ids`)."""
        path = Path(path)
        fmt = format or path.suffix.lstrip(".").lower()
        with open(path, "rb") as f:
            return self.upload_stream(name, f, fmt, mode, message, tags, progress, project,
                                      where, row_ids)

    def upload_stream(self, name: str, stream: BinaryIO, format: str,
                      mode: str = "append", message: str = "", tags: builtins.list[str] | None = None,
                      progress: Callable[[int], None] | None = None,
                      project: str | None = None, where: str | None = None,
                      row_ids: builtins.list[str] | None = None) -> dict[str, Any]:
        """`mode="replace"` removes the rows matching `where` or `row_ids` and adds the
        stream's rows, as one version."""
        params = {"format": format, "mode": mode, "message": message, "tags": ",".join(tags or [])}
        if where:
            params["where"] = where
        if row_ids:
            params["row_ids"] = ",".join(row_ids)
        return self._t.post(self._p(f"/datasets/{name}/upload", project), params=params,  # type: ignore[no-any-return]
                            content=FileBody(stream, progress),
                            headers={"content-type": "application/octet-stream"})

    def upload_folder(self, name: str, folder: str | Path, mode: str = "append",
                      message: str = "", tags: builtins.list[str] | None = None,
                      progress: Callable[[int], None] | None = None,
                      project: str | None = None, where: str | None = None,
                      row_ids: builtins.list[str] | None = None) -> dict[str, Any]:
        """Images in one sub-folder per class → an image_classification commit (PNG).

        The images go into a temporary Parquet file one row group at a time (never all in
        memory), which is then streamed to the server like any other upload.
        """
        import tempfile

        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([("image", pa.binary()), ("label", pa.string())])
        with tempfile.TemporaryFile(suffix=".parquet") as spool:
            with pq.ParquetWriter(spool, schema) as writer:
                for group in _folder_groups(Path(folder), FOLDER_GROUP_ROWS):
                    writer.write_table(pa.table(
                        {"image": [img for img, _ in group], "label": [lab for _, lab in group]},
                        schema=schema))
            spool.seek(0)
            return self.upload_stream(name, spool, "parquet", mode, message, tags,  # type: ignore[arg-type]
                                      progress, project, where, row_ids)

    def import_builtin(self, name: str, source: str, message: str = "",
                       tags: builtins.list[str] | None = None, mode: str = "overwrite",
                       project: str | None = None) -> dict[str, Any]:
        """Creates `name` if needed and commits a built-in source (e.g. `sklearn:digits`)."""
        body = {"name": name, "source": source, "message": message, "tags": tags or [],
                "mode": mode}
        return self._t.post(self._p("/datasets/import", project), json=body)  # type: ignore[no-any-return]

    def versions(self, name: str, project: str | None = None) -> builtins.list[dict[str, Any]]:
        return self._t.get(self._p(f"/datasets/{name}/versions", project))  # type: ignore[no-any-return]

    def stats(self, name: str, version: int | None = None,
              project: str | None = None) -> dict[str, Any]:
        params = {"version": version} if version else {}
        return self._t.get(self._p(f"/datasets/{name}/stats", project), params=params)  # type: ignore[no-any-return]

    def rows(self, name: str, version: int | None = None, offset: int = 0, limit: int = 20,
             project: str | None = None) -> builtins.list[dict[str, Any]]:
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if version:
            params["version"] = version
        return self._t.get(self._p(f"/datasets/{name}/rows", project), params=params)  # type: ignore[no-any-return]

    def diff(self, name: str, from_version: int, to_version: int,
             project: str | None = None) -> dict[str, Any]:
        return self._t.get(self._p(f"/datasets/{name}/diff", project),  # type: ignore[no-any-return]
                           params={"from": from_version, "to": to_version})

    def snapshot(self, name: str, version: int | None = None, cutoff: str | None = None,
                 tags_all_of: builtins.list[str] | None = None, tags_any_of: builtins.list[str] | None = None,
                 seed: int = 0, fractions: dict[str, float] | None = None, wait: bool = True,
                 timeout_s: float = 600, project: str | None = None) -> dict[str, Any]:
        """Creates (or reuses) a snapshot; with `wait`, returns once it is ready."""
        body: dict[str, Any] = {"version": version, "cutoff": cutoff, "seed": seed,
                                "tags_all_of": tags_all_of or [], "tags_any_of": tags_any_of or []}
        if fractions:
            body["fractions"] = fractions
        snap: dict[str, Any] = self._t.post(self._p(f"/datasets/{name}/snapshots", project), json=body)
        return self.wait(snap, timeout_s, project) if wait else snap

    def wait(self, snap: dict[str, Any], timeout_s: float = 600,
             project: str | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while snap["status"] == "pending":
            if time.monotonic() > deadline:
                raise Unavailable(f"snapshot {snap['id']} is still pending after {timeout_s} s")
            time.sleep(0.2)
            snap = self.get_snapshot(snap["id"], project)
        if snap["status"] == "failed":
            raise FailedPrecondition(f"snapshot {snap['id']} failed: {snap.get('error')}; "
                                     "retry it with retry_snapshot()", {"snapshot": snap["id"]})
        return snap

    def get_snapshot(self, snapshot_id: str, project: str | None = None) -> dict[str, Any]:
        return self._t.get(self._p(f"/dataset-snapshots/{snapshot_id}", project))  # type: ignore[no-any-return]

    def list_snapshots(self, name: str, project: str | None = None) -> builtins.list[dict[str, Any]]:
        return self._t.get(self._p(f"/datasets/{name}/snapshots", project))  # type: ignore[no-any-return]

    def retry_snapshot(self, snapshot_id: str, project: str | None = None) -> dict[str, Any]:
        return self._t.post(self._p(f"/dataset-snapshots/{snapshot_id}/retry", project))  # type: ignore[no-any-return]

    def gc(self, retention_days: float = 7.0, project: str | None = None) -> dict[str, Any]:
        """Garbage-collect old unreferenced versions of the project's datasets (admin)."""
        return self._t.post(self._p("/datasets/gc", project),  # type: ignore[no-any-return]
                            params={"retention_days": retention_days})


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    import base64

    return {k: base64.b64encode(v).decode() if isinstance(v, (bytes, bytearray)) else v
            for k, v in row.items()}


def _folder_groups(folder: Path, size: int) -> Iterator[builtins.list[tuple[bytes, str]]]:
    """(PNG bytes, class) of every image under folder/<class>/, `size` at a time.

    Hidden files (`.DS_Store`, editors' swap files) are skipped. A file that is not a readable
    image stops nothing until the whole folder was read, then InvalidArgument names them all:
    the caller uploads only after this has run to its end, so nothing is stored.
    """
    from PIL import Image

    group: builtins.list[tuple[bytes, str]] = []
    bad: builtins.list[str] = []
    seen = 0
    for cls_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(p for p in cls_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
            seen += 1
            try:
                png = _as_png(f)
            except (OSError, ValueError, Image.DecompressionBombError) as e:
                bad.append(f"{f.relative_to(folder)} ({type(e).__name__})")
                continue
            if not bad:
                group.append((png, cls_dir.name))
            if len(group) == size:
                yield group
                group = []
    if bad:
        raise InvalidArgument(
            f"{len(bad)} file(s) in {folder} are not a readable image: {', '.join(bad[:20])}"
            f"{' ...' if len(bad) > 20 else ''}; remove or convert them. Nothing was uploaded",
            {"files": bad[:100]})
    if not seen:
        raise InvalidArgument(f"{folder} holds no images: put them in one sub-folder per "
                              "class, e.g. cat/1.png, dog/2.jpg", {"folder": str(folder)})
    if group:
        yield group


def _as_png(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return data
    from PIL import Image

    buf = io.BytesIO()
    with Image.open(io.BytesIO(data)) as im:
        im.save(buf, format="PNG")
    return buf.getvalue()
