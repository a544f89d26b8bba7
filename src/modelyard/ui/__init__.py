"""modelyard.ui: the web console, served by the API server at `/ui`.

The console is a client of the REST API only: plain ES modules under `static/js` render every
page in the browser with the bearer token the user pasted (kept in `sessionStorage`). Its npm
dependencies (uPlot for charts) are installed by `npm ci` in `web/` and copied into
`static/vendor` by `npm run build`; see `modelyard.ui.assets`.
"""

from __future__ import annotations

from modelyard.ui.assets import STATIC_DIR, VENDOR_DIR, build_vendor, vendor_ready

__all__ = ["STATIC_DIR", "VENDOR_DIR", "build_vendor", "vendor_ready"]
