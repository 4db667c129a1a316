"""The bench's figures as a dated Markdown section of ``BENCHMARKS.md`` (newest first).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from superres.atomic import write_text
from superres.bench.training import spread

BENCHMARKS_FILE = Path("BENCHMARKS.md")


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "pass" if value else "**MISSED**"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def markdown_section(result: dict[str, Any]) -> str:
    """The dated ``BENCHMARKS.md`` section: machine, device, torch, command, then every figure and the targets."""
    meta, m = result["meta"], result["meta"]["machine"]
    ram = f"{m['ram_gib']:.0f} GiB" if m["ram_gib"] else "unknown RAM"
    lines = [f"## {meta['date']}: `{meta['command']}`", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {ram}, {m['os']}, Python {m['python']}. "
             f"Device: {meta['device']} ({meta['device_name']}). torch {meta['torch']}, {meta['threads']} threads.", "",
             "| what | figure | target | result |", "|---|---|---|---|"]

    def add(what: str, figure: str, target: str = "", verdict: str = "") -> None:
        lines.append(f"| {what} | {figure} | {target} | {verdict} |")

    for r in result["training"]:
        note = ", " + r["note"] if "note" in r else ""
        label = (f"train {r['arch']} {r['size']} ({r['source']}{note}), batch {r['batch']}, LR patch {r['lr_patch']}, "
                 f"x{r['scale']}")
        if "error" in r:
            add(label, f"failed: {r['error'][:120]}")
        else:
            add(label, f"trainer {_fmt(r['trainer_patches_per_s'])} patches/s, "
                       f"plain fp32 {_fmt(r['plain_patches_per_s'])} patches/s, "
                       f"ratio {r['ratio']:.3f} ({spread(r)})",
                "CPU: >= 0.952 (overhead <= 5%)" if meta["device"] == "cpu" else "")
    mfu = result["mfu"]
    if "skipped" in mfu:
        add("MFU, EDSR-baseline x4", f"skipped: {mfu['skipped']}")
    for r in mfu.get("runs", []):
        label = f"EDSR-baseline x4 batch {r['batch']}, LR 48, trainer compile={r['compile']}"
        if "error" in r:
            add(label, f"failed: {r['error'][:120]}")
        else:
            add(label, f"{_fmt(r['trainer_patches_per_s'])} patches/s "
                       f"({r['step_ms']:.1f} ms/step, {r['step_gflop']:.0f} GFLOP/step), "
                       f"plain fp32 {_fmt(r['plain_patches_per_s'])}, ratio {r['ratio']:.2f}, MFU {_fmt(r.get('mfu'))}",
                ">= 2x; MFU >= 25% at batch 64")
    for r in result["data_loading"]:
        add(f"data loader alone, {r['what']} (batch {r['batch']}, LR patch {r['lr_patch']})",
            f"{_fmt(r['loader_patches_per_s'])} patches/s = {r['ratio']:.1f}x the trainer", ">= 3x")
    d = result["degradation"]
    add(f"bicubic x1/4 of a {d['image']}",
        f"project {_fmt(d['project_mp_per_s'])} MP/s (first call {d['project_first_call_s']:.2f} s), "
        f"straightforward numpy {_fmt(d['reference_mp_per_s'])} MP/s: {d['speedup']:.1f}x, "
        f"max diff {d['max_abs_diff']:.1e}",
        ">= 5x, <= 1e-5")
    for r in result["inference"]:
        label = f"`superres upscale` {r['case']} {r['input']}, {r['model']}"
        add(label, f"failed: {r['error'][-200:]}" if "error" in r else
            f"{_fmt(r['output_mp_per_s'])} output MP/s ({r['seconds']:.1f} s), "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB {r['options']}")
    p = result["pipeline"]
    if "dvc_status_s" in p:
        add("`dvc status`", f"{p['dvc_status_s']:.2f} s")
    if "dvc_repro_noop_s" in p:
        add("no-op `dvc repro`", f"{p['dvc_repro_noop_s']:.2f} s", "<= 2 s")
        add("`kedro run --pipelines=report`",
            f"{p['kedro_report_s']:.1f} s" if "kedro_report_s" in p else p.get("kedro_report", ""))
    if "skipped" in p:
        add("pipeline overhead", f"skipped: {p['skipped']}", "<= 2 s")
    lines += _precision_tables(result)
    lines += ["", "Targets:", "", "| target | wanted | measured | result |", "|---|---|---|---|"]
    for t in result["targets"]:
        verdict = _fmt(t["passed"]) if t["passed"] is not None else f"not measured: {t['note']}"
        if t["passed"] is not None and t["note"]:
            verdict += f" ({t['note']})"
        lines.append(f"| {t['target']} | {t['wanted']} | {_fmt(t['value'])} | {verdict} |")
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _precision_tables(result: dict[str, Any]) -> list[str]:
    """The peak, the training step in fp32 NCHW and in ``auto``, and the upscale engines, as tables."""
    peak = result.get("peak")
    if not peak:
        return []
    lines = ["", f"Attainable peak (best of a few calls): {peak['matmul_n']}^2 matmul fp32 "
                 f"{peak['matmul_fp32_tflops']:.3f} TFLOP/s, bf16 {peak['matmul_bf16_tflops']:.3f} TFLOP/s; "
                 f"3x3 convolution ({peak['conv']}) fp32 {peak['conv_fp32_tflops']:.3f}, "
                 f"bf16 {peak['conv_bf16_tflops']:.3f} TFLOP/s. MFU is model FLOP/s over the matmul peak of the "
                 "precision the work ran in.", ""]
    rows = result.get("precision", [])
    if rows:
        lines += ["Training step of the default profile (plain Adam + L1, interleaved), fp32 NCHW against `auto`:", "",
                  "| architecture | batch x LR patch | GFLOP/step | fp32 NCHW ms (MFU) | auto | auto ms (MFU) | "
                  "speed-up (quartiles) |", "|---|---|---:|---:|---|---:|---:|"]
        for r in rows:
            if "error" in r:
                lines.append(f"| {r['arch']} | | | failed: {r['error'][:100]} | | | |")
                continue
            low, high = r["ratio_quartiles"]
            lines.append(f"| {r['arch']} | {r['batch']} x {r['lr_patch']} | {r['step_gflop']:.1f} | "
                         f"{r['fp32_ms']:.0f} ({_pct(r['fp32_mfu'])}) | {r['auto']} | "
                         f"{r['auto_ms']:.0f} ({_pct(r['auto_mfu'])}) | {r['speedup']:.2f}x ({low:.2f}-{high:.2f}) |")
        lines.append("")
    engines = result.get("engines", [])
    if engines:
        lines += ["Upscaling, tile by tile as `superres upscale` (128-pixel tiles, overlap 32), per engine: "
                  "output MP/s (model TFLOP/s, MFU):", "",
                  "| architecture | upscale | torch fp32 NCHW | torch auto | onnxruntime (CPU) |",
                  "|---|---|---|---|---|"]
        by_case: dict[tuple[str, int, str], dict[str, dict[str, Any]]] = {}
        for r in engines:
            by_case.setdefault((r["arch"], r["scale"], r["input"]), {})[r["engine"]] = r

        def cell(r: dict[str, Any] | None) -> str:
            if r is None:
                return "n/a"
            if "skipped" in r:  # onnxruntime not installed (the `export` extra)
                return "skipped: not installed"
            if "error" in r:  # the bicubic inside some models has no dynamic-shape export: the reason, not the trace
                return f"failed: {r['error'].split(': <', 1)[0][:100]}"
            return f"{r['output_mp_per_s']:.2f} ({r['tflops']:.3f}, {_pct(r['mfu'])})"

        for (arch, scale, size), found in by_case.items():
            if "all" in found:
                lines.append(f"| {arch} | {size} x{scale} | {cell(found['all'])} | | |")
                continue
            auto = found.get("torch auto", {})
            label = f"{cell(auto)} {auto.get('precision', '')}".strip()
            lines.append(f"| {arch} | {size} x{scale} | {cell(found.get('torch fp32'))} | {label} | "
                         f"{cell(found.get('onnxruntime'))} |")
    return lines


def append_section(path: Path, section: str) -> None:
    """Add ``section`` to ``path`` above the newest dated section (the file reads newest first),
    written atomically; a missing file is started with a title."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    at = text.find("\n## ")
    if at < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        text = text[: at + 1] + section.rstrip("\n") + "\n\n" + text[at + 1 :]
    write_text(path, text)
