"""The web console's routes: the page shell at `/ui` and its static files at `/ui/static/...`.

Nothing here reads a service: the pages call the REST API from the browser with the user's
token, so the server's role checks apply to every action exactly as for any other client.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

import modelyard
from modelyard.core.errors import NotFound
from modelyard.ui.assets import STATIC_DIR, vendor_ready

router = APIRouter(prefix="/ui", tags=["console"], include_in_schema=False)

_NO_CHARTS = ("<p class='banner'>Charts are off: the console's npm dependencies are not built. "
              "Run <code>cd src/modelyard/ui/web &amp;&amp; npm ci &amp;&amp; npm run build</code>."
              "</p>")


@router.get("", response_model=None)
def console_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/", response_class=HTMLResponse)
def console() -> HTMLResponse:
    """The single page; every view is a `#/...` route rendered by `static/js/app.js`."""
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    html = html.replace("{{version}}", modelyard.__version__)
    html = html.replace("{{banner}}", "" if vendor_ready() else _NO_CHARTS)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/static/{path:path}")
def static_file(path: str) -> FileResponse:
    target = _resolve(path)
    media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if target.suffix in (".js", ".mjs"):
        media_type = "text/javascript"
    return FileResponse(target, media_type=media_type, headers={"Cache-Control": "no-cache"})


def _resolve(path: str) -> Path:
    """The file under STATIC_DIR that `path` names; never a path outside it."""
    root = STATIC_DIR.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise NotFound(f"the console has no file {path!r}; open /ui/ to start")
    return target
