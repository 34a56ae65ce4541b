"""Self-contained HTML pages: `validation/index.html` (the data-quality report) and `preview/index.html`.

No scripts, fonts or stylesheets are fetched: CSS is inline and images are data URIs, so the pages open
from a bucket download or an air-gapped laptop alike.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import re
from typing import Any

from beam_pipelines.files import write_text
from beam_pipelines.layout import PREVIEW_PAGE, VALIDATION_PAGE, OutputLayout
from beam_pipelines.report import Report
from beam_pipelines.sinks.plots import BLUE, GREEN, LABEL_COLOURS, RED, bar_chart
from beam_pipelines.sinks.profile import drawn

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
.verdict{padding:10px 14px;border-radius:6px;font-size:16px;margin:12px 0}.verdict.ok{background:#e6f4ea}
.verdict.error{background:#fde7e9}.plots{display:flex;flex-wrap:wrap;gap:8px}.plot{border:1px solid #eee}
.badge{border:1px solid currentColor;border-radius:4px;padding:0 4px;font-size:12px}
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


def anchor(kind: str, name: str) -> str:
    """An element id for a check or record name: the name itself where it is id-safe, else a slug and a hash."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:60]
    if slug != name:
        slug = f"{slug}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"
    return f"{kind}-{slug}"


def _link(kind: str, name: str, known: set[str] | dict[str, Any]) -> str:
    """The name, linked to its card where the page has one."""
    return f'<a href="#{anchor(kind, name)}">{_e(name)}</a>' if name in known else _e(name)


def _where(entry: dict[str, Any]) -> str:
    p = entry["provenance"]
    return f"{p.get('input_file')} {p.get('member') or ''} row {p.get('row')}"


def _errors(entry: dict[str, Any]) -> str:
    return "; ".join(f"{_e(x['check'])}: {_e(x['message'])}" for x in entry["errors"])


def _example_block(entries: list[dict[str, Any]]) -> str:
    out = []
    for e in entries:
        image = f'<img src="{e["image"]}" alt="rejected image with boxes">' if e.get("image") else ""
        text = f'<div class="muted">{_e(_where(e))}</div><div>{_errors(e)}</div><pre>{_e(e["excerpt"])}</pre>'
        out.append(f'<div class="row">{image}<div style="flex:1;min-width:380px">{text}</div></div>')
    return "".join(out)


def verdict(report: dict[str, Any], failure: str | None) -> str:
    """The first thing on the validation page: published or not, and why."""
    version = report.get("version") or {}
    name = _e(version.get("version", ""))
    n, rejected = report.get("input_records", 0), report.get("rejected", 0)
    counts = (
        f"{report.get('accepted', 0):,} of {n:,} input records accepted, {rejected:,} rejected"
        f" ({rejected / n if n else 0:.1%}), {report.get('duplicates', 0):,} duplicates"
    )
    if failure is not None:
        state, text = "error", f"<b>Not published</b> ({name}): {_e(failure)}.<br>{counts}."
    elif version.get("nothing_to_do"):
        state, text = "ok", f"<b>Nothing to do</b>: {counts}."
    else:
        state, text = "ok", f"<b>Published {name}</b>: {counts}."
    return f'<div class="verdict {state}" id="verdict">{text}</div>'


def _reasons(report: dict[str, Any], linked: dict[str, Any]) -> str:
    """Every rejection reason, the most frequent first, with its share of the input and a link to its records."""
    ranked = sorted(report.get("rejected_by_check", {}).items(), key=lambda kv: (-kv[1], kv[0]))
    if not ranked:
        return '<h2 id="reasons">Rejection reasons</h2><p class="ok">No record was rejected.</p>'
    n = report.get("input_records", 0) or 1
    described = report.get("expectations", {})
    rows = "".join(
        f'<tr><td>{_link("check", check, linked)}</td><td class="num">{count:,}</td>'
        f'<td class="num">{count / n:.1%}</td><td>{_e(described.get(check, {}).get("description", ""))}</td></tr>'
        for check, count in ranked
    )
    return (
        '<h2 id="reasons">Rejection reasons</h2><p class="muted">Records rejected by each check (a record can fail '
        "more than one).</p><table><tr><th>check</th><th>records</th><th>of the input</th><th>what it checks</th>"
        f"</tr>{rows}</table>"
    )


def distributions(profile: dict[str, Any] | None) -> str:
    """Histograms of the accepted samples' measurements, one per metric, the subsets stacked; the step labels'
    balance per subset."""
    plots = []
    for metric, groups in drawn(profile or {}):
        if metric.name == "step_labels":  # the balance: one bar per subset, its labels stacked in their colours
            series = {label: [groups[g][i] for g in groups] for i, label in enumerate(metric.categories)}
            plots.append(bar_chart(f"{metric.title} per subset", list(groups), series, LABEL_COLOURS))
        else:
            plots.append(bar_chart(metric.title, metric.labels(), groups))
    if not plots:
        return ""
    return (
        '<h2 id="distributions">Distributions of the accepted samples</h2><p class="muted">Per subset, stacked: '
        f'{_e(", ".join(sorted(profile or {})))}.</p><div class="plots">{"".join(plots)}</div>'
    )


def _suites(report: dict[str, Any], applicable: tuple[str, ...] | None, linked: dict[str, Any]) -> str:
    suites: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, exp in report.get("expectations", {}).items():
        if applicable is None or exp["suite"] in applicable:
            suites.setdefault(exp["suite"], []).append((name, exp))
    parts = [
        '<div id="suites"><p class="muted">Severity <span class="error">error</span> rejects the sample (see '
        '<code>rejected/</code>); <span class="warning">warning</span> keeps it and lists the check in its '
        "<code>warnings</code> column. Suites: <code>" + _e(report["config"].get("expectations")) + "</code>.</p>"
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
                f'<tr><td>{_link("check", name, linked)}</td><td class="{_e(exp["severity"])}">'
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
    return "".join(parts) + "</div>"


def _failing_records(examples: dict[str, list[dict[str, Any]]]) -> str:
    """Per check, links to its example records; each record once, with every check it failed."""
    records: dict[str, dict[str, Any]] = {}
    by_check: dict[str, list[str]] = {}
    for check, entries in examples.items():
        for entry in entries:
            key = json.dumps([entry.get("sample_id"), entry["provenance"]], sort_keys=True, default=str)
            known = records.setdefault(key, {**entry, "errors": []})
            known["errors"] += [x for x in entry["errors"] if x not in known["errors"]]
            by_check.setdefault(check, []).append(key)
    ids = {key: f"record-{i}" for i, key in enumerate(records)}
    parts = ['<h2 id="records">Examples of failing records</h2>']
    for check, keys in by_check.items():
        links = ", ".join(f'<a href="#{ids[k]}">{_e(_where(records[k]))}</a>' for k in keys)
        parts.append(f'<div class="card" id="{anchor("check", check)}"><h3>{_e(check)}</h3>{links}</div>')
    for key, entry in records.items():
        parts.append(f'<div class="card" id="{ids[key]}">{_example_block([entry])}</div>')
    return "".join(parts)


def validation_page(
    report: dict[str, Any],
    examples: dict[str, list[dict[str, Any]]],
    suites: tuple[str, ...] | None = None,
    profile: dict[str, Any] | None = None,
    failure: str | None = None,
) -> str:
    """The verdict, the rejection reasons ranked, the data's distributions, the pass rates of the suites that
    apply (`suites`; None: every suite in the report), the annotation model's agreement, and the failing records."""
    sections = [("verdict", "verdict"), ("reasons", "rejection reasons")]
    plots = distributions(profile)
    if plots:
        sections.append(("distributions", "distributions"))
    sections.append(("suites", "suites"))
    if examples:
        sections.append(("records", "failing records"))
    nav = " · ".join(f'<a href="#{target}">{label}</a>' for target, label in sections)
    parts = [
        f"<h1>Validation report: {_e(report['config'].get('source'))}</h1>",
        f'<nav class="muted">{nav}</nav>',
        verdict(report, failure),
        _counts_table(report),
        _reasons(report, examples),
        plots,
        _suites(report, suites, examples),
        annotation_section(report.get("annotation") or {}),
    ]
    if examples:
        parts.append(_failing_records(examples))
    return _page(f"vgr-etl validation: {report['config'].get('source')}", "".join(parts))


def _score_plot(counts: list[int], title: str, colour: str) -> str:
    width = 1 / len(counts) if counts else 0
    return bar_chart(title, [f"{i * width:.2f}" for i in range(len(counts))], {title: counts}, {title: colour})


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
    plots = _score_plot(hist["+"], "scores of steps labelled +", GREEN) + _score_plot(
        hist["-"], "scores of steps labelled −", RED
    )
    return f"<tr><td>{_e(name)}</td>{cells}<td>{matrix}</td><td>{plots}</td></tr>"


def annotation_section(annotation: dict[str, Any]) -> str:
    """The annotation model's agreement with the labels per source (and per subset), with score histograms."""
    if not annotation:
        return ""
    parts = ['<h2 id="annotation">Annotation model</h2>']
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
            f"<h3>{_e(name)}</h3>" + _score_plot(r["histogram"], "verification scores of regions", BLUE)
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


_STEP_LABELS = {"+": ("+", "ok"), "-": ("−", "error")}


def _step_label(label: str | None) -> str:
    """A step's label cell, coloured: + green, − red, neutral (VisualProcessBench's 0) grey."""
    text, css = _STEP_LABELS.get(label, ("neutral", "muted")) if label is not None else ("neutral", "muted")
    return f'<td class="{css}"><b>{_e(text)}</b></td>'


def _accepted_card(s: dict[str, Any], baseline: int) -> str:
    parts = [
        f'<div class="card"><h3>{_e(s["source"])} / {_e(s["subset"])}: <code>{_e(s["sample_id"])}</code></h3>',
        f'<div class="muted">{_e(json.dumps(s["provenance"]))} · image {_e(s["image_size"])}</div>',
    ]
    if s["warnings"]:
        badges = " ".join(f'<span class="badge warning">{_e(w)}</span>' for w in s["warnings"])
        parts.append(f"<div>warnings: {badges}</div>")
    if s["tokens"]:
        t = s["tokens"]
        anyres = f" (AnyRes {_e(t['best_resolution'])})" if t["best_resolution"] else ""
        parts.append(
            f"<div>visual tokens: base <b>{t['base']}</b>{anyres} + replay "
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
            f"<tr><td>{st['index']}</td>{_step_label(st['label'])}<td>{_e(st['mc_score'])}</td>"
            f"<td>{_e(st['text'])}</td></tr>"
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
    warned = showcase.get("warned", [])
    if warned:
        parts.append(f"<h2>Accepted with warnings ({len(warned)} shown)</h2>")
        parts.extend(_accepted_card(s, baseline) for s in warned)
    parts.append(f"<h2>Rejected ({len(showcase['rejected'])} shown)</h2>")
    parts.extend(f'<div class="card">{_example_block([entry])}</div>' for entry in showcase["rejected"])
    return _page(f"vgr-etl preview: {report['config'].get('source')}", "".join(parts))


def write_pages(
    layout: OutputLayout,
    version: str,
    report: Report,
    showcase: dict[str, Any],
    suites: tuple[str, ...],
) -> None:
    """Both pages, kept with the version and at the output root (the last run's)."""
    body = dataclasses.asdict(report)
    pages = {
        VALIDATION_PAGE: validation_page(body, showcase["examples"], suites, showcase.get("profile"), report.failure()),
        PREVIEW_PAGE: preview_page(body, showcase),
    }
    for page, text in pages.items():
        write_text(layout.page(page, version), text, layout.scratch)
        write_text(layout.page(page), text, layout.scratch)
