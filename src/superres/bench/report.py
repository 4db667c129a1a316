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
    lines += ["", "Targets:", "", "| target | wanted | measured | result |", "|---|---|---|---|"]
    for t in result["targets"]:
        verdict = _fmt(t["passed"]) if t["passed"] is not None else f"not measured: {t['note']}"
        if t["passed"] is not None and t["note"]:
            verdict += f" ({t['note']})"
        lines.append(f"| {t['target']} | {t['wanted']} | {_fmt(t['value'])} | {verdict} |")
    return "\n".join(lines) + "\n"


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
