"""How the annotation model's scores agree with the data's labels: counted per sample (flat counters that merge by
addition), then summed up for the report's `annotation` section, overall, per source and per subset.

A step counts when the data labels it `+` or `-` and it was measured: the Raw form's early-stop tail (0/0, never
rolled out) and VisualProcessBench's neutral steps are left out. The model's label is `+` when the step's score is
at least `--prm_threshold`. Scores are counted in bins of a thousandth, so AUROC (ties within a bin count half) and
the Spearman correlation with the Raw form's Monte Carlo scores (on 50 × 50 bins, mid-ranks) come from counters,
never from a list of every score.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from beam_pipelines.records import Sample

BINS = 1000
RANK_BINS = 50
PAGE_BINS = 20
PREFIX, VERIFY = "annotation/", "verify/"


def groups(sample: Sample) -> tuple[str, ...]:
    return ("all", f"source:{sample.source}", f"subset:{sample.source}:{sample.subset}")


def _bin(score: float, bins: int) -> int:
    return min(int(score * bins), bins - 1)


def sample_counters(sample: Sample, threshold: float) -> Counter:
    """The counters of one accepted sample's scores (none when it was not scored)."""
    stats: Counter = Counter()
    scored = [s for s in sample.steps if s.prm_score is not None]
    if scored:
        model_first = next((s.index for s in scored if s.prm_score < threshold), -1)
        label_first = next((s.index for s in sample.steps if s.correctness == -1), -1)
        for g in groups(sample):
            stats[f"{PREFIX}{g}/samples"] += 1
            stats[f"{PREFIX}{g}/first_error_match"] += int(model_first == label_first)
        for step in scored:
            if step.label not in ("+", "-") or step.measured is False:
                continue
            data = "p" if step.label == "+" else "n"
            model = "p" if step.prm_score >= threshold else "n"
            score_bin = _bin(step.prm_score, BINS)
            for g in groups(sample):
                stats[f"{PREFIX}{g}/steps"] += 1
                stats[f"{PREFIX}{g}/cm/{data}{model}"] += 1
                stats[f"{PREFIX}{g}/hist/{data}/{score_bin}"] += 1
                if step.mc_score is not None:
                    mc = f"{_bin(step.prm_score, RANK_BINS)}/{_bin(step.mc_score, RANK_BINS)}"
                    stats[f"{PREFIX}{g}/mc/{mc}"] += 1
    for region in sample.regions:
        if region.verify_score is not None:
            for g in groups(sample):
                stats[f"{VERIFY}{g}/regions"] += 1
                stats[f"{VERIFY}{g}/hist/{_bin(region.verify_score, PAGE_BINS)}"] += 1
    return stats


def auroc(positive: dict[int, int], negative: dict[int, int]) -> float | None:
    """P(a positive step scores above a negative one), ties counting half; None without both kinds."""
    n_pos, n_neg = sum(positive.values()), sum(negative.values())
    if not n_pos or not n_neg:
        return None
    below = wins = 0.0
    for b in sorted(set(positive) | set(negative)):
        p, n = positive.get(b, 0), negative.get(b, 0)
        wins += p * (below + n / 2)
        below += n
    return wins / (n_pos * n_neg)


def _midranks(counts: dict[int, int]) -> dict[int, float]:
    ranks, seen = {}, 0
    for b in sorted(counts):
        ranks[b] = seen + (counts[b] + 1) / 2
        seen += counts[b]
    return ranks


def spearman(pairs: dict[tuple[int, int], int]) -> float | None:
    """Spearman's rho of binned (x, y) pairs with their counts, by mid-ranks; None when either side is constant."""
    n = sum(pairs.values())
    if n < 2:
        return None
    xs, ys = Counter(), Counter()
    for (x, y), c in pairs.items():
        xs[x] += c
        ys[y] += c
    rx, ry = _midranks(xs), _midranks(ys)
    mean = (n + 1) / 2
    cov = sum(c * (rx[x] - mean) * (ry[y] - mean) for (x, y), c in pairs.items())
    vx = sum(c * (rx[x] - mean) ** 2 for x, c in xs.items())
    vy = sum(c * (ry[y] - mean) ** 2 for y, c in ys.items())
    return cov / math.sqrt(vx * vy) if vx and vy else None


def _f1(tp: int, fp: int, fn: int) -> float | None:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None


def step_statistics(counts: dict[str, int]) -> dict[str, Any]:
    """The agreement of one group, from its counters (keys without the group prefix)."""
    tp, fn, fp, tn = (counts.get(f"cm/{k}", 0) for k in ("pp", "pn", "np", "nn"))
    steps = tp + fn + fp + tn
    f1_pos, f1_neg = _f1(tp, fp, fn), _f1(tn, fn, fp)
    hist = {
        label: {int(k.rsplit("/", 1)[1]): v for k, v in counts.items() if k.startswith(f"hist/{label}/")}
        for label in ("p", "n")
    }
    pairs = {tuple(int(x) for x in k.split("/")[1:3]): v for k, v in counts.items() if k.startswith("mc/")}
    samples = counts.get("samples", 0)
    page = {label: [0] * PAGE_BINS for label in ("+", "-")}
    for label, name in (("p", "+"), ("n", "-")):
        for b, v in hist[label].items():
            page[name][b * PAGE_BINS // BINS] += v
    return {
        "samples": samples,
        "steps": steps,
        "confusion": {"label+_model+": tp, "label+_model-": fn, "label-_model+": fp, "label-_model-": tn},
        "accuracy": round((tp + tn) / steps, 6) if steps else None,
        "f1_positive": None if f1_pos is None else round(f1_pos, 6),
        "f1_negative": None if f1_neg is None else round(f1_neg, 6),
        "macro_f1": round((f1_pos + f1_neg) / 2, 6) if f1_pos is not None and f1_neg is not None else None,
        "auroc": None if (a := auroc(hist["p"], hist["n"])) is None else round(a, 6),
        "spearman_mc": None if (r := spearman(pairs)) is None else round(r, 6),
        "first_error_agreement": round(counts.get("first_error_match", 0) / samples, 6) if samples else None,
        "histogram": page,
    }


_COUNTER = re.compile(r"^(.*)/(samples|first_error_match|steps|regions|cm/[pn]{2}|hist/[pn]/\d+|hist/\d+|mc/\d+/\d+)$")


def _by_group(stats: dict[str, int], prefix: str) -> dict[str, dict[str, int]]:
    """Counters per group (a subset's name may hold any character, slashes included)."""
    out: dict[str, dict[str, int]] = {}
    for key, value in stats.items():
        match = _COUNTER.match(key[len(prefix) :]) if key.startswith(prefix) else None
        if match:
            out.setdefault(match[1], {})[match[2]] = value
    return out


def section(stats: dict[str, int], threshold: float) -> dict[str, Any]:
    """The report's `annotation` section (of a run with an annotation model)."""
    steps, regions = _by_group(stats, PREFIX), _by_group(stats, VERIFY)

    def split(per_group: dict[str, dict[str, int]], summarise) -> dict[str, Any]:
        def of(kind: str) -> dict[str, Any]:
            return {g.split(":", 1)[1]: summarise(c) for g, c in sorted(per_group.items()) if g.startswith(kind)}

        return {
            "overall": summarise(per_group["all"]) if "all" in per_group else None,
            "by_source": of("source:"),
            "by_subset": of("subset:"),
        }

    def verify_summary(counts: dict[str, int]) -> dict[str, Any]:
        hist = [0] * PAGE_BINS
        for k, v in counts.items():
            if k.startswith("hist/"):
                hist[int(k.split("/")[1])] += v
        return {"regions": counts.get("regions", 0), "histogram": hist}

    return {
        "prm_threshold": threshold,
        "steps": split(steps, step_statistics) if steps else None,
        "regions": split(regions, verify_summary) if regions else None,
        "below_min_verify_rejected": stats.get("check/verify_score_below_min", 0),
        "below_min_verify_flagged": stats.get("warning/verify_score_below_min", 0),
        "first_error_filter_rejected": stats.get("check/prm_first_error_disagrees", 0),
        "first_error_filter_flagged": stats.get("warning/prm_first_error_disagrees", 0),
        "inference_failed": stats.get("check/inference_failed", 0),
    }
