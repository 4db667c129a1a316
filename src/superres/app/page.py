"""The Streamlit page of ``superres app``: pick a scale and a model, upload an image, compare.

The page only lays things out; what happens to the pixels is in :mod:`superres.app.core`.
Arguments arrive after ``--`` on the ``streamlit run`` command line (see :func:`parse_args`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path, PurePath

import numpy as np
import streamlit as st
from torch import nn

from superres.app.core import Comparison, MiB, compare, decode_upload, find_models, png_bytes, zoom
from superres.data.imageio import IMAGE_SUFFIXES
from superres.errors import SuperresError
from superres.inference import for_inference, pick_device
from superres.models import count_parameters
from superres.models.weights import WEIGHTS_FILE, load_model
from superres.modelstore import StoredModel, find_project

UPLOAD_TYPES = sorted(suffix.lstrip(".") for suffix in IMAGE_SUFFIXES)  # what read_image decodes
ZOOM_DISPLAY = 320


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="superres app", description="The superres web app.")
    parser.add_argument("--models", type=Path, default=None,
                        help="folder of trained model folders (default: the project's, its params.yaml seeds)")
    parser.add_argument("--project", type=Path, default=None,
                        help="the project (default: SUPERRES_PROJECT, else the one above the working directory)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--max-upload-mb", type=float, default=20.0, help="largest accepted upload, in MB")
    parser.add_argument("--max-pixels", type=int, default=1_000_000,
                        help="largest accepted image to upscale, in pixels")
    return parser.parse_args(list(argv))


@st.cache_resource(show_spinner=False, max_entries=4)
def _load(folder: str, modified: float, device: str) -> tuple[nn.Module, int]:
    """The model in ``folder`` (reloaded when its weights file changes) and its parameter count."""
    torch_device = pick_device(device)
    model, config = load_model(folder, torch_device)
    return for_inference(model, config.get("architecture"), torch_device), count_parameters(model)


@st.cache_data(show_spinner=False, max_entries=8)
def _compare(folder: str, modified: float, device: str, scale: int, lr: np.ndarray,
             hr: np.ndarray | None) -> Comparison:
    model, _ = _load(folder, modified, device)
    return compare(model, scale, lr, hr)


def _models_dir(args: argparse.Namespace) -> tuple[Path, tuple[int, ...] | None]:
    """``--models`` (every seed folder in it), else the project's models folder and its params.yaml seeds; a
    project that cannot be found or read shows why and stops the page."""
    if args.models is not None:
        return args.models, None
    try:
        project = find_project(args.project)
        return project.models_dir, project.seeds()
    except SuperresError as exc:
        st.warning(f"{exc}; or start the app with `--models FOLDER`.")
        st.stop()  # raises: the page ends here


def _choose_model(models: list[StoredModel]) -> StoredModel:
    scales = sorted({m.scale for m in models})
    scale = st.sidebar.selectbox("Scale", scales, format_func=lambda s: f"x{s}", index=len(scales) - 1, key="scale")
    candidates = [m for m in models if m.scale == scale]
    return st.sidebar.selectbox("Model", candidates, format_func=lambda m: m.label, key="model")


def _upload(column, label: str, key: str, hint: str, args: argparse.Namespace,
            max_pixels: int) -> tuple[np.ndarray | None, str]:
    """The decoded upload of one uploader (None when empty); a refused file shows why and stops the page."""
    with column:
        file = st.file_uploader(label, type=UPLOAD_TYPES, key=key, help=hint)
    if file is None:
        return None, ""
    try:
        max_bytes = int(args.max_upload_mb * MiB)
        image = decode_upload(file.getvalue(), file.name, max_bytes=max_bytes, max_pixels=max_pixels)
    except SuperresError as exc:
        st.error(str(exc), icon=":material/block:")
        st.stop()
    return image, file.name


def _show_metrics(result: Comparison, choice: StoredModel) -> None:
    bicubic, model = result.metrics["bicubic"], result.metrics["model"]
    cols = st.columns(4)
    cols[0].metric(f"PSNR-Y {choice.name}", f"{model['psnr_y']:.2f} dB",
                   delta=f"{model['psnr_y'] - bicubic['psnr_y']:+.2f} dB vs bicubic")
    cols[1].metric(f"SSIM-Y {choice.name}", f"{model['ssim_y']:.4f}",
                   delta=f"{model['ssim_y'] - bicubic['ssim_y']:+.4f} vs bicubic")
    cols[2].metric("PSNR-Y bicubic", f"{bicubic['psnr_y']:.2f} dB")
    cols[3].metric("SSIM-Y bicubic", f"{bicubic['ssim_y']:.4f}")
    st.caption(f"Measured on the luma (BT.601) with {choice.scale} pixels shaved from each border, "
               "as in the SR literature.")


def _show_side_by_side(result: Comparison, choice: StoredModel) -> None:
    left, right = st.columns(2)
    for column, image, caption in ((left, result.bicubic, "Bicubic"), (right, result.sr, choice.name)):
        column.image(image, caption=f"{caption} x{choice.scale}", alt=f"{caption} x{choice.scale}", width="stretch")


def _show_zoom(result: Comparison, choice: StoredModel) -> None:
    st.subheader("Zoom: the same crop of each")
    controls = st.columns(3)
    x = controls[0].slider("Horizontal position (%)", 0, 100, 50, key="zoom_x") / 100
    y = controls[1].slider("Vertical position (%)", 0, 100, 50, key="zoom_y") / 100
    size = controls[2].select_slider("Crop size (pixels)", [16, 32, 48, 64, 96, 128], value=48, key="zoom_size")
    panels = [(result.bicubic, "Bicubic"), (result.sr, choice.name)]
    if result.hr is not None:
        panels.append((result.hr, "HR original"))
    for column, (image, caption) in zip(st.columns(len(panels)), panels, strict=True):
        column.image(zoom(image, (x, y), size, ZOOM_DISPLAY), caption=caption, alt=f"{caption}, zoomed",
                     width="stretch")


def main(argv: Sequence[str] = ()) -> None:
    args = parse_args(argv)
    st.set_page_config(page_title="superres: upscale an image", page_icon=":material/zoom_in:", layout="wide")
    st.title("superres: upscale an image")
    st.caption("Bicubic interpolation and a trained super-resolution model side by side. "
               "Give the HR original too to measure both.")
    models_dir, seeds = _models_dir(args)
    models = find_models(models_dir, seeds)
    if not models:
        st.warning(f"No trained models in {models_dir}: train one (`kedro run --pipelines=edsr`) "
                   "or start the app with `--models FOLDER` or `--project DIR`.")
        st.stop()
    choice = _choose_model(models)
    modified = (choice.folder / WEIGHTS_FILE).stat().st_mtime
    try:
        _, n_params = _load(str(choice.folder), modified, args.device)
    except SuperresError as exc:
        st.error(str(exc))
        st.stop()
    st.sidebar.caption(f"{choice.architecture}, {n_params:,} parameters, from `{choice.folder}`")
    st.sidebar.caption(f"Limits: {args.max_upload_mb:g} MB per file, {args.max_pixels:,} pixels per image to upscale.")

    columns = st.columns(2)
    lr, name = _upload(columns[0], "Image to upscale", "lr", "The low-resolution image the model enlarges.",
                       args, args.max_pixels)
    hr, _ = _upload(columns[1], "HR original (optional)", "hr",
                    f"The high-resolution image the first one was shrunk from (x{choice.scale} its size): "
                    "gives PSNR and SSIM.",
                    args, args.max_pixels * choice.scale**2)
    if lr is None:
        st.info("Upload an image to upscale it. Add its HR original to measure PSNR and SSIM.",
                icon=":material/upload:")
        st.stop()
    try:
        with st.spinner(f"Upscaling x{choice.scale} with {choice.name}..."):
            result = _compare(str(choice.folder), modified, args.device, choice.scale, lr, hr)
    except SuperresError as exc:
        st.error(str(exc), icon=":material/block:")
        st.stop()

    st.success(f"{lr.shape[1]} x {lr.shape[0]} -> {result.sr.shape[1]} x {result.sr.shape[0]} pixels "
               f"with {choice.name} in {result.seconds:.2f} s", icon=":material/check:")
    if result.metrics is not None:
        _show_metrics(result, choice)
    _show_side_by_side(result, choice)
    st.download_button(f"Download the {choice.name} result (PNG)", png_bytes(result.sr), type="primary",
                       file_name=f"{PurePath(name).stem}_x{choice.scale}_{choice.name.replace('/', '_')}.png",
                       mime="image/png",
                       icon=":material/download:")
    _show_zoom(result, choice)
