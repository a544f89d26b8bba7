"""The user guide at `/docs/guide/`: the MkDocs site of this version, served offline.

The site is static files built by `make docs` (`mkdocs build --strict`): into `site/` of a
checkout, or into `modelyard/_guide/` inside the package when a wheel is built with it. Like
the console's shell it holds no data, so it needs no token. Without a built site the route
answers a page saying how to build one.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

import modelyard
from modelyard.core.errors import NotFound

PREFIX = "/docs/guide"
router = APIRouter(prefix=PREFIX, tags=["guide"], include_in_schema=False)

def site_dir() -> Path | None:
    """The built site this server serves, if any: packaged first, then a checkout's `site/`."""
    package = Path(modelyard.__file__).resolve().parent
    for candidate in (package / "_guide", package.parents[1] / "site"):
        if (candidate / "index.html").is_file():
            return candidate
    return None


@router.get("", response_model=None)
def guide_root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


@router.get("/{path:path}")
def guide_file(path: str) -> FileResponse:
    root = site_dir()
    if root is None:
        raise NotFound(f"this modelyard ({modelyard.__version__}) has no built user guide: run "
                       "`make docs` in its checkout (it builds site/, served here); the pages "
                       "are in docs/ of the source meanwhile")
    target = _resolve(root, path)
    if target is None:
        raise NotFound(f"the guide has no page {path!r}; open {PREFIX}/ to start")
    media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if target.suffix in (".js", ".mjs"):
        media_type = "text/javascript"
    return FileResponse(target, media_type=media_type)


def _resolve(root: Path, path: str) -> Path | None:
    """The file `path` names under `root` (a folder means its index.html); never outside it."""
    base = root.resolve()
    target = (base / path).resolve()
    if not target.is_relative_to(base):
        return None
    if target.is_dir():
        target = target / "index.html"
    return target if target.is_file() else None
