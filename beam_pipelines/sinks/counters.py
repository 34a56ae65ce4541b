"""The report's counts: flat counters per outcome, merged by a combiner (only counters cross a shuffle), and the
report sections computed from them.

Each outcome counts as exactly one of accepted / rejected / duplicates; whether that adds up to the records read,
and to what the written files hold, is the invariant's to check (`sinks.invariant`), from independent counts.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import apache_beam as beam

from beam_pipelines.annotation import agreement
from beam_pipelines.files import WrittenFile
from beam_pipelines.layout import OutputLayout
from beam_pipelines.materialisation.replay import BASELINE_TOKENS
from beam_pipelines.records import Duplicate, Rejection, Sample


def outcome_stats(outcome: Sample | Rejection | Duplicate, prm_threshold: float = 0.5) -> dict[str, int]:
    """Flat counters for one outcome; keys are `group/name` so they merge by plain addition."""
    src = outcome.source
    if isinstance(outcome, Sample):
        stats = Counter({"accepted": 1, f"source/{src}/accepted": 1, f"subset/{src}:{outcome.subset}/accepted": 1})
        stats["regions"] += len(outcome.regions)
        stats[f"source/{src}/regions"] += len(outcome.regions)
        stats["regions_with_replay_marker"] += sum(r.replay_marker for r in outcome.regions)
        stats["steps"] += len(outcome.steps)
        for w in outcome.warnings:
            stats[f"warning/{w}"] += 1
        for img in outcome.images:
            stats[f"image_resolution/{img.rule}"] += 1
        scored = [r.grounding_score for r in outcome.regions if r.grounding_score is not None]
        if scored:
            stats["grounding/samples_scored"] += 1
            stats["grounding/regions_scored"] += len(scored)
            stats["grounding/score_sum_micro"] += sum(round(s * GROUNDING_SCALE) for s in scored)
        stats.update(agreement.sample_counters(outcome, prm_threshold))
        if outcome.visual_tokens is not None:
            base, replay = outcome.visual_tokens
            for group in ("all", f"source:{src}", f"subset:{src}:{outcome.subset}"):
                stats[f"tokens/{group}/samples"] += 1
                stats[f"tokens/{group}/base"] += base
                stats[f"tokens/{group}/replay"] += replay
        return dict(stats)
    if isinstance(outcome, Rejection):
        stats = Counter({"rejected": 1, f"source/{src}/rejected": 1})
        first = outcome.errors[0]
        stats[f"check/{first.check}"] += 1
        stats[f"stage/{first.stage}"] += 1
        return dict(stats)
    stats = {"duplicates": 1, f"source/{src}/duplicates": 1}
    if outcome.kept_in:
        stats["already_present"] = 1
    return stats


GROUNDING_SCALE = 1_000_000  # scores summed as integers (millionths) so the mean is independent of merge order


def grounding(stats: dict[str, int]) -> dict[str, Any]:
    """Scoring stage summary: what was scored (accepted samples), the mean region score, below-minimum counts."""
    regions = stats.get("grounding/regions_scored", 0)
    total = stats.get("grounding/score_sum_micro", 0) / GROUNDING_SCALE
    return {
        "samples_scored": stats.get("grounding/samples_scored", 0),
        "regions_scored": regions,
        "mean_region_score": round(total / regions, 6) if regions else None,
        "below_min_rejected": stats.get("check/grounding_score_below_min", 0),
        "below_min_flagged": stats.get("warning/grounding_score_below_min", 0),
        "inference_failed": stats.get("check/inference_failed", 0),
    }


class MergeCounts(beam.CombineFn):
    def create_accumulator(self) -> Counter:
        return Counter()

    def add_input(self, acc: Counter, value: dict[str, int]) -> Counter:
        acc.update(value)
        return acc

    def merge_accumulators(self, accs) -> Counter:
        out: Counter = Counter()
        for acc in accs:
            out.update(acc)
        return out

    def extract_output(self, acc: Counter) -> dict[str, int]:
        return dict(acc)


def _group(stats: dict[str, int], prefix: str) -> dict[str, int]:
    return dict(sorted((k[len(prefix) :], v) for k, v in stats.items() if k.startswith(prefix)))


def _nested(stats: dict[str, int], prefix: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for key, value in sorted(stats.items()):
        if key.startswith(prefix):
            name, field = key[len(prefix) :].rsplit("/", 1)
            out.setdefault(name, {})[field] = value
    return out


def token_economy(stats: dict[str, int], preset_json: str | None) -> dict[str, Any]:
    """Mean visual tokens per sample: base (global view + pooled tiles) and replayed regions, vs the baseline."""
    groups = _nested(stats, "tokens/")

    def means(counts: dict[str, int]) -> dict[str, float]:
        n = counts.get("samples", 0) or 1
        base, replay = counts.get("base", 0) / n, counts.get("replay", 0) / n
        return {
            "samples": counts.get("samples", 0),
            "mean_base_tokens": round(base, 2),
            "mean_replay_tokens": round(replay, 2),
            "mean_total_tokens": round(base + replay, 2),
        }

    overall = means(groups.get("all", {}))
    return {
        **{k: v for k, v in overall.items() if k != "samples"},
        "baseline_tokens": BASELINE_TOKENS,
        "by_source": {k.split(":", 1)[1]: means(v) for k, v in groups.items() if k.startswith("source:")},
        "by_subset": {k.split(":", 1)[1]: means(v) for k, v in groups.items() if k.startswith("subset:")},
        "replay_preset": json.loads(preset_json) if preset_json else None,
    }


def expectation_results(stats: dict[str, int], infos: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Per expectation: its suite, column, severity, rows evaluated and failed, pass rate."""
    measured = _nested(stats, "expectation/")
    out = {}
    for name, info in infos.items():
        row = measured.get(f"{info['suite']}/{name}", {})
        evaluated, failed = row.get("evaluated", 0), row.get("failed", 0)
        out[name] = {
            **info,
            "evaluated": evaluated,
            "failed": failed,
            "pass_rate": round(1 - failed / evaluated, 6) if evaluated else None,
        }
    return out


def count_sections(
    stats: dict[str, int],
    shards: list[WrittenFile],
    layout: OutputLayout,
    config: dict[str, Any],
    expectations: dict[str, dict[str, str]],
) -> dict[str, Any]:
    """The report's fields that come from the merged counters and the files written."""
    accepted, rejected, duplicates = (stats.get(k, 0) for k in ("accepted", "rejected", "duplicates"))
    per_source = _nested(stats, "source/")
    for counts in per_source.values():
        counts["input_records"] = sum(counts.get(k, 0) for k in ("accepted", "rejected", "duplicates"))
    files: dict[str, dict[str, int]] = {}
    for shard in shards:
        entry = files.setdefault(shard.kind, {"files": 0, "rows": 0, "bytes": 0})
        entry["files"] += 1
        entry["rows"] += shard.rows
        entry["bytes"] += shard.bytes
    return {
        "input_records": accepted + rejected + duplicates,
        "accepted": accepted,
        "rejected": rejected,
        "duplicates": duplicates,
        "already_present": stats.get("already_present", 0),
        "removed": stats.get("removed", 0),
        "rejected_by_check": _group(stats, "check/"),
        "rejected_by_stage": _group(stats, "stage/"),
        "regions": stats.get("regions", 0),
        "regions_with_replay_marker": stats.get("regions_with_replay_marker", 0),
        "steps": stats.get("steps", 0),
        "warnings": _group(stats, "warning/"),
        "expectations": expectation_results(stats, expectations),
        "image_resolution": _group(stats, "image_resolution/"),
        "per_source": per_source,
        "per_subset": _nested(stats, "subset/"),
        "token_economy": token_economy(stats, config.get("replay_preset_json")),
        "grounding": grounding(stats),
        "annotation": agreement.section(stats, config.get("prm_threshold", 0.5))
        if config.get("annotation_model")
        else {},
        "replay_preset": json.loads(config["replay_preset_json"]) if config.get("replay_preset_json") else None,
        "shards": dict(sorted(files.items())),
        "shard_files": sorted(layout.path(s.path) for s in shards),
        "config": config,
    }
