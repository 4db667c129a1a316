"""The MATLAB-compatible bicubic of the degradations: the project's against the reference port.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from superres.bench.reference_bicubic import reference_imresize
from superres.bench.timing import Plan, best_time
from superres.data.resize import imresize


def measure_degradation(plan: Plan) -> dict[str, Any]:
    """Input MP/s of the project's bicubic and of the reference port on a 2040 x 1356 RGB float64 image, x1/4."""
    height, width = 1356, 2040
    img = np.random.default_rng(0).random((height, width, 3))
    tensor = torch.from_numpy(img).permute(2, 0, 1)
    first = time.perf_counter()
    imresize(tensor, scale=0.25)  # builds and caches the weight matrices
    first = time.perf_counter() - first
    project_s, ours = best_time(lambda: imresize(tensor, scale=0.25).permute(1, 2, 0).numpy(), plan.resize_repeats)
    reference_s, theirs = best_time(lambda: reference_imresize(img, 0.25), max(1, plan.resize_repeats - 1))
    megapixels = height * width / 1e6
    return {"image": f"{width}x{height} RGB float64", "scale": 0.25, "antialias": True,
            "project_mp_per_s": megapixels / project_s, "project_first_call_s": first,
            "reference_mp_per_s": megapixels / reference_s, "speedup": reference_s / project_s,
            "max_abs_diff": float(np.max(np.abs(ours - theirs)))}
