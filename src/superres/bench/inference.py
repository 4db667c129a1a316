"""``superres upscale`` on a square image, tiled and untiled, each case in a fresh process: output MP/s and
peak resident memory.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from superres.bench.timing import Plan, run_child
from superres.errors import SuperresError
from superres.models import create_model
from superres.models.weights import Weights, save_weights


def measure_inference(device: torch.device, plan: Plan) -> list[dict[str, Any]]:
    """``superres upscale`` of one random-weights EDSR x2 on a square PNG, each case in a fresh process."""
    from PIL import Image

    side, scale, cfg = plan.image_side, 2, {"n_resblocks": 4, "n_feats": 16}
    rows = []
    with tempfile.TemporaryDirectory(prefix="superres-bench-") as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        save_weights(root / "weights", Weights(create_model("edsr", scale=scale, **cfg).state_dict(),
                                                {"architecture": "edsr", "scale": scale, "model": cfg}))
        pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "in.png")
        for name, extra in (("untiled", []), ("tiled", ["--tile", "512", "--overlap", "16"])):
            row: dict[str, Any] = {"case": name, "input": f"{side}x{side}",
                                   "model": f"edsr x{scale} {cfg} (random weights)"}
            args = [sys.executable, "-m", "superres", "upscale", str(root / "in.png"), "-o", str(root / name),
                    "--model", str(root / "weights"), "--device", device.type, *extra]
            try:
                seconds, rss, _ = run_child(args, root)
            except SuperresError as exc:
                row["error"] = str(exc)
            else:
                row.update(options=" ".join(extra), seconds=seconds,
                           output_mp_per_s=(side * scale) ** 2 / 1e6 / seconds,
                           peak_rss_mib=rss / 2**20)
            rows.append(row)
    return rows
