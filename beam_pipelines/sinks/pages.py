"""Self-contained HTML pages: `validation/index.html` (the data-quality report) and `preview/index.html`.

No scripts, fonts or stylesheets are fetched: CSS is inline and images are data URIs, so the pages open
from a bucket download or an air-gapped laptop alike.
"""

from __future__ import annotations

import dataclasses
import html
import json
from typing import Any

from beam_pipelines.files import write_text
from beam_pipelines.layout import PREVIEW_PAGE, VALIDATION_PAGE, OutputLayout
from beam_pipelines.report import Report

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}h3{font-size:15px;margin:4px 0}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f3f3f3}.num{text-align:right;font-variant-numeric:tabular-nums}
.error{color:#b00020}.warning{color:#9a6700}.ok{color:#1a7f37}.card{border:1px solid #ddd;border-radius:6px;
padding:10px;margin:12px 0}.row{display:flex;gap:16px;flex-wrap:wrap}.muted{color:#666;font-size:12px}
pre{white-space:pre-wrap;word-break:break-word;background:#fafafa;padding:6px;margin:4px 0;max-height:320px;
overflow:auto}mark{background:#ffe08a;padding:0 2px;border-radius:2px}.region{display:flex;gap:8px;
margin:6px 0;align-items:flex-start}.region img{border:1px solid #ccc;max-width:160px}.bar{background:#eee;
width:120px;height:10px;display:inline-block}.bar span{background:#1a7f37;height:10px;display:block}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body>{body}</body></html>\n"
    )


def _counts_table(report: dict[str, Any]) -> str:
    cells = "".join(
        f'<tr><th>{k.replace("_", " ")}</th><td class="num">{report.get(k, 0)}</td></tr>'
        for k in ("input_records", "accepted", "rejected", "duplicates", "regions", "steps")
    )
    return f"<table>{cells}</table>"


def _example_block(entries: list[dict[str, Any]]) -> str:
    out = []
    for e in entries:
        errors = "; ".join(f"{_e(x['check'])}: {_e(x['message'])}" for x in e["errors"])
        p = e["provenance"]
        where = f"{p.get('input_file')} {p.get('member') or ''} row {p.get('row')}"
        out.append(f'<div class="muted">{_e(where)}</div><div>{errors}</div><pre>{_e(e["excerpt"])}</pre>')
    return "".join(out)


def validation_page(report: dict[str, Any], examples: dict[str, list[dict[str, Any]]]) -> str:
    """Per-expectation pass rates grouped by suite, with examples of failing rows, and the other checks."""
    suites: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, exp in report.get("expectations", {}).items():
        suites.setdefault(exp["suite"], []).append((name, exp))
    parts = [
        f"<h1>Validation report: {_e(report['config'].get('source'))}</h1>",
        _counts_table(report),
        '<p class="muted">Severity <span class="error">error</span> rejects the sample (see <code>rejected/</code>); '
        '<span class="warning">warning</span> keeps it and lists the check in its <code>warnings</code> column. '
        "Suites: <code>" + _e(report["config"].get("expectations")) + "</code>.</p>",
    ]
    for suite, rows in sorted(suites.items()):
        lines = []
        for name, exp in rows:
            rate = exp["pass_rate"]
            bar = (
                f'<span class="bar"><span style="width:{round(120 * rate)}px"></span></span>'
                if rate is not None
                else ""
            )
            shown = f"{rate:.2%}" if rate is not None else "not evaluated"
            lines.append(
                f'<tr><td><a href="#{_e(name)}">{_e(name)}</a></td><td class="{_e(exp["severity"])}">'
                f"{_e(exp['severity'])}</td><td>{_e(exp['column'])}</td><td>{_e(exp['type'])}</td>"
                f'<td class="num">{exp["evaluated"]}</td><td class="num">{exp["failed"]}</td><td>{bar} {shown}</td>'
                f"<td>{_e(exp['description'])}</td></tr>"
            )
        parts.append(
            f"<h2>Suite <code>{_e(suite)}</code></h2><table><tr><th>expectation</th><th>severity</th><th>column</th>"
            "<th>type</th><th>rows evaluated</th><th>rows failed</th><th>pass rate</th><th>why</th></tr>"
            + "".join(lines)
            + "</table>"
        )
    parts.append(annotation_section(report.get("annotation") or {}))
    other = {k: v for k, v in report.get("rejected_by_check", {}).items() if k not in report.get("expectations", {})}
    if other:
        parts.append("<h2>Other rejections (reading, parsing, images)</h2><table>")
        parts.append(
            "".join(
                f'<tr><td><a href="#{_e(k)}">{_e(k)}</a></td><td class="num">{v}</td></tr>' for k, v in other.items()
            )
        )
        parts.append("</table>")
    if examples:
        parts.append("<h2>Examples of failing records</h2>")
        for check, entries in examples.items():
            parts.append(f'<div class="card" id="{_e(check)}"><h3>{_e(check)}</h3>{_example_block(entries)}</div>')
    return _page(f"vgr-etl validation: {report['config'].get('source')}", "".join(parts))


def _histogram(counts: list[int], label: str, colour: str) -> str:
    """A histogram of scores over [0, 1] as a row of bars (inline CSS), with its counts on hover."""
    top = max(counts) if counts and max(counts) else 1
    width = 1 / len(counts) if counts else 0
    bars = "".join(
        f'<span title="{i * width:.2f}-{(i + 1) * width:.2f}: {n}" style="display:inline-block;width:14px;'
        f'height:{max(1, round(60 * n / top))}px;background:{colour};margin-right:1px;vertical-align:bottom"></span>'
        for i, n in enumerate(counts)
    )
    return f'<div class="muted">{_e(label)} ({sum(counts)})</div><div style="height:62px">{bars}</div>'


def _agreement_row(name: str, stats: dict[str, Any]) -> str:
    cm = stats["confusion"]
    cells = "".join(
        f'<td class="num">{_e(stats[k] if stats[k] is not None else "—")}</td>'
        for k in ("steps", "accuracy", "macro_f1", "auroc", "spearman_mc", "first_error_agreement")
    )
    matrix = (
        f'<table><tr><th></th><th>model +</th><th>model −</th></tr><tr><th>label +</th><td class="num">'
        f'{cm["label+_model+"]}</td><td class="num">{cm["label+_model-"]}</td></tr><tr><th>label −</th>'
        f'<td class="num">{cm["label-_model+"]}</td><td class="num">{cm["label-_model-"]}</td></tr></table>'
    )
    hist = stats["histogram"]
    plots = _histogram(hist["+"], "scores of steps labelled +", "#1a7f37") + _histogram(
        hist["-"], "scores of steps labelled −", "#b00020"
    )
    return f"<tr><td>{_e(name)}</td>{cells}<td>{matrix}</td><td>{plots}</td></tr>"


def annotation_section(annotation: dict[str, Any]) -> str:
    """The annotation model's agreement with the labels per source (and per subset), with score histograms."""
    if not annotation:
        return ""
    parts = ["<h2>Annotation model</h2>"]
    steps = annotation.get("steps")
    if steps:
        head = (
            "<tr><th>group</th><th>steps</th><th>accuracy</th><th>macro-F1</th><th>AUROC</th><th>Spearman (mc)</th>"
            "<th>first error agreement</th><th>confusion</th><th>score histograms</th></tr>"
        )
        rows = [_agreement_row(f"source {name}", s) for name, s in steps["by_source"].items()]
        rows += [_agreement_row(f"subset {name}", s) for name, s in steps["by_subset"].items()]
        parts.append(
            f'<p class="muted">Process-reward scores against the labels; the model says + from prm_threshold '
            f"{_e(annotation.get('prm_threshold'))} on.</p><table>{head}{''.join(rows)}</table>"
        )
    regions = annotation.get("regions")
    if regions:
        plots = "".join(
            f"<h3>{_e(name)}</h3>" + _histogram(r["histogram"], "verification scores of regions", "#1a5fb4")
            for name, r in regions["by_source"].items()
        )
        parts.append(plots)
    failed = annotation.get("inference_failed", 0)
    if failed:
        parts.append(f'<p class="error">{failed} samples rejected: the annotation model failed on them.</p>')
    return "".join(parts)


def highlight_regions(segments: list[list[Any]]) -> str:
    """A card's text, escaped, with every region reference marked with its region's index."""
    return "".join(
        _e(piece) if region is None else f"<mark>[{region}] {_e(piece)}</mark>" for piece, region in segments
    )


def _accepted_card(s: dict[str, Any], baseline: int) -> str:
    parts = [
        f'<div class="card"><h3>{_e(s["source"])} / {_e(s["subset"])}: <code>{_e(s["sample_id"])}</code></h3>',
        f'<div class="muted">{_e(json.dumps(s["provenance"]))} · image {_e(s["image_size"])}'
        + (f" · warnings: {_e(', '.join(s['warnings']))}" if s["warnings"] else "")
        + "</div>",
    ]
    if s["tokens"]:
        t = s["tokens"]
        parts.append(
            f"<div>visual tokens: base <b>{t['base']}</b> (AnyRes {_e(t['best_resolution'])}) + replay "
            f"<b>{t['replay']}</b> = <b>{t['base'] + t['replay']}</b> vs {baseline} un-pooled</div>"
        )
    parts.append('<div class="row">')
    if s["image"]:
        parts.append(f'<img src="{s["image"]}" alt="image with boxes">')
    parts.append('<div style="flex:1;min-width:380px">')
    parts.append(f"<div><b>Q:</b> {_e(s['question'])}</div>")
    if s["text"]:
        parts.append(f"<pre>{highlight_regions(s['text'])}</pre>")
    for r in s["regions"]:
        crop = f'<img src="{r["crop"]}" alt="crop {r["index"]}">' if r["crop"] else ""
        replay = (
            f"grid box {_e(r['replay_grid_box'])}, {_e(r['replay_token_count'])} replay tokens"
            if r["replay_grid_box"] is not None
            else "no replay grid"
        )
        parts.append(
            f'<div class="region">{crop}<div><mark>[{r["index"]}]</mark> box {_e(r["box"])} px {_e(r["box_px"])}'
            f"{' label ' + _e(r['label']) if r['label'] else ''}{'' if r['replay_marker'] else ' (no replay marker)'}"
            f'<div class="muted">{replay}</div><div>{_e(r["context"])}</div></div></div>'
        )
    if s["steps"]:
        rows = "".join(
            f"<tr><td>{st['index']}</td><td>{_e(st['label'])}</td><td>{_e(st['mc_score'])}</td><td>{_e(st['text'])}</td></tr>"
            for st in s["steps"]
        )
        parts.append(f"<table><tr><th>step</th><th>label</th><th>mc score</th><th>text</th></tr>{rows}</table>")
    if s["answer"]:
        parts.append(f"<div><b>Answer:</b> {_e(s['answer'])}</div>")
    parts.append("</div></div></div>")
    return "".join(parts)


def preview_page(report: dict[str, Any], showcase: dict[str, Any]) -> str:
    """Accepted samples drawn with their boxes, text with box references next to their crops; rejected ones."""
    economy = report.get("token_economy") or {}
    baseline = economy.get("baseline_tokens", 2880)
    parts = [f"<h1>Preview: {_e(report['config'].get('source'))}</h1>", _counts_table(report)]
    if economy.get("mean_base_tokens"):
        parts.append(
            f"<p>Mean visual tokens per sample: base {economy['mean_base_tokens']} + replay "
            f"{economy['mean_replay_tokens']} = {economy['mean_total_tokens']} (baseline {baseline}).</p>"
        )
    parts.append(f"<h2>Accepted ({len(showcase['accepted'])} shown)</h2>")
    parts.extend(_accepted_card(s, baseline) for s in showcase["accepted"])
    parts.append(f"<h2>Rejected ({len(showcase['rejected'])} shown)</h2>")
    parts.append(_example_block(showcase["rejected"]))
    return _page(f"vgr-etl preview: {report['config'].get('source')}", "".join(parts))


def write_pages(layout: OutputLayout, version: str, report: Report, showcase: dict[str, Any]) -> None:
    """Both pages, kept with the version and at the output root (the last run's)."""
    body = dataclasses.asdict(report)
    pages = {VALIDATION_PAGE: validation_page(body, showcase["examples"]), PREVIEW_PAGE: preview_page(body, showcase)}
    for page, text in pages.items():
        write_text(layout.page(page, version), text, layout.scratch)
        write_text(layout.page(page), text, layout.scratch)
