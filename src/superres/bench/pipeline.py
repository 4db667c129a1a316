"""Pipeline overhead: a no-op ``dvc repro`` and the report pipeline on existing outputs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from superres.bench.timing import run_child


def measure_pipeline(root: Path, quick: bool) -> dict[str, Any]:
    """No-op ``dvc repro`` and the report pipeline, only where the pipeline's outputs exist and are up to date.
    The report rerun records one more ``report`` run in MLflow; its outputs are restored afterwards."""
    here = Path(sys.executable).parent  # the environment's own scripts, when it is not on PATH
    dvc, kedro = (shutil.which(name) or shutil.which(name, path=str(here)) for name in ("dvc", "kedro"))
    if not (root / "dvc.yaml").is_file() or not (root / "dvc.lock").is_file():
        return {"skipped": f"no DVC project with outputs in {root}"}
    if dvc is None:
        return {"skipped": "dvc is not on PATH"}
    start = time.perf_counter()
    status = subprocess.run([dvc, "status", "--json"], cwd=root, capture_output=True, text=True)
    status_s = time.perf_counter() - start
    out: dict[str, Any] = {"dvc_status_s": status_s}
    try:
        changed = json.loads(status.stdout or "{}")
    except json.JSONDecodeError:
        changed = {"?": status.stderr.strip()[-200:]}
    if status.returncode != 0 or changed:
        what = ", ".join(sorted(changed)) or status.stderr.strip()[-200:]
        out["skipped"] = (f"the pipeline is not up to date ({what} changed): "
                          "a repro would not be a no-op; run `dvc repro` first")
        return out
    if quick:
        out["skipped"] = "--quick: pipeline overhead not measured"
        return out
    out["dvc_repro_noop_s"], _, _ = run_child([dvc, "repro"], root)
    if kedro is None:
        out["kedro_report"] = "skipped: kedro is not on PATH"
    else:
        out["kedro_report_s"], _, _ = run_child([kedro, "run", "--pipelines=report"], root)
        # The rerun rewrote the page (it is dated): restore the pipeline's own from DVC's cache, so
        # that the pipeline stays up to date.
        subprocess.run([dvc, "checkout", "--force", "report"], cwd=root, capture_output=True, text=True)
    return out
