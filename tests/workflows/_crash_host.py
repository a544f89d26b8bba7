"""A modelyard process that starts the `resumable` pipeline and keeps running until killed.

`python -m tests.workflows._crash_host <home> <workdir>`: writes the run id to
`<workdir>/run_id` once the run is queued; the test kills this process with SIGKILL.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from modelyard.core.settings import Settings
from modelyard.server.platform import Platform
from tests.workflows._packages import register


def main(home: str, workdir: str) -> None:
    platform = Platform(Settings(home=Path(home), background=True,
                                 security={"sandbox": "off"}))  # type: ignore[arg-type]
    platform.start()
    wf = platform.workflows
    register(wf, "resumable")
    run = wf.run("alpha", "resumable", {"workdir": workdir}, "tester")
    (Path(workdir) / "run_id").write_text(run.id)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
