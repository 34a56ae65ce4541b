"""Thumbnails are made at the one decode, for every sample the preview can end up showing, and few others."""

import random
import re
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_pipelines.demo.generate import generate
from beam_pipelines.layout import PREVIEW_PAGE
from beam_pipelines.materialisation import images
from beam_pipelines.materialisation.thumbnails import (
    PREVIEW_ACCEPTED,
    SHORTLIST,
    Candidates,
    RunningTop,
    preview_key,
    shortlist_end,
)
from beam_pipelines.materialisation.transforms import PreviewShortlist
from beam_pipelines.records import Provenance
from beam_pipelines.sources.registry import dataset_named
from tests.conftest import parquet_rows, rejected_lines, run_cli


def test_the_running_top_k_of_each_worker_holds_the_top_k_of_the_run():
    rng = random.Random(7)
    for _ in range(50):
        keys = [preview_key(f"s{i}") for i in rng.sample(range(10_000), 300)]
        workers = [RunningTop(5) for _ in range(3)]
        chosen = {key for key in keys if workers[rng.randrange(3)].offer(key)}
        assert set(sorted(keys)[:5]) <= chosen
        assert len(chosen) < 120, "and only a few more: about k(1 + ln(n/k)) per worker"


def test_a_key_offered_again_stays_chosen_and_a_larger_one_does_not_enter():
    top = RunningTop(2)
    assert top.offer("b") and top.offer("c") and top.offer("b")
    assert not top.offer("d") and top.offer("a") and not top.offer("c")


def test_warned_samples_have_their_own_running_top():
    candidates = Candidates()
    ids = sorted((f"s{i}" for i in range(200)), key=preview_key)
    for sample_id in ids[:PREVIEW_ACCEPTED]:
        assert candidates.wanted(sample_id, warned=False)
    assert not candidates.wanted(ids[-1], warned=False)
    assert candidates.wanted(ids[-1], warned=True), "the first warned sample is in the warned preview"


def test_past_the_shortlist_no_accepted_sample_is_wanted_however_early():
    ids = sorted((f"s{i}" for i in range(200)), key=preview_key)
    candidates = Candidates()
    within = preview_key(ids[SHORTLIST - 1])
    assert not candidates.wanted(ids[-1], warned=False, within=within), "past the end, even into an empty top"
    assert candidates.wanted(ids[SHORTLIST - 1], warned=False, within=within), "the end itself is on the list"
    assert candidates.wanted(ids[-1], warned=True, within=within), "warned samples have no shortlist"


def test_a_shortlist_ends_at_its_last_key_once_full():
    top = RunningTop(3)
    for key in "dcb":
        top.offer(key)
    assert shortlist_end(top) == "d"
    assert shortlist_end(RunningTop(3)) is None, "fewer records than the list holds: no end, every key is on it"


@pytest.mark.parametrize("n", [SHORTLIST + 70, SHORTLIST - 1])
def test_the_shortlist_of_a_run_is_its_smallest_keys_each_id_once(n):
    ids = [f"sample-{i}" for i in range(n)]
    keyed = [(sample_id, "state") for sample_id in ids + ids[::3]]  # copies of a third of them
    keys = sorted({preview_key(sample_id) for sample_id in ids})
    expected = keys[SHORTLIST - 1] if n >= SHORTLIST else None
    with BeamTestPipeline(runner="FnApiRunner") as p:
        ends = p | beam.Create(keyed, reshuffle=False) | PreviewShortlist()
        assert_that(ends, equal_to([expected]))


@pytest.mark.slow
def test_past_the_shortlist_no_thumbnail_is_made_and_every_card_still_has_its_picture(tmp_path, monkeypatch):
    made: list[str] = []  # the sample of every thumbnail made at decode
    real = images.decode_images

    def decode_images(sample, every_first_image=False, preview=False):
        if preview:
            made.append(sample.sample_id)
        return real(sample, every_first_image, preview)

    monkeypatch.setattr(images, "decode_images", decode_images)  # FnApiRunner runs the job in this process
    run = generate(tmp_path / "data", n_vgr=SHORTLIST + 40, n_prm=1)["vgr"]
    out = tmp_path / "out"
    assert run_cli(*run.argv(str(out)), "--max_reject_fraction=0.5") == 0
    accepted = parquet_rows(out, "samples")
    warned = {r["sample_id"] for r in accepted if r["warnings"]}
    keys = sorted(preview_key(r["sample_id"]) for r in accepted)
    assert len(keys) > SHORTLIST, "the run has more accepted samples than the shortlist"
    unwarned_past_it = [s for s in made if s not in warned and preview_key(s) > keys[SHORTLIST - 1]]
    assert made and not unwarned_past_it, f"thumbnails past the shortlist: {unwarned_past_it}"
    assert len(made) < len(accepted) // 2
    page = (out / PREVIEW_PAGE).read_text()
    shown = int(re.search(r"<h2>Accepted \((\d+) shown\)</h2>", page).group(1))
    cards = page.split("<h2>Accepted (", 1)[1].split("<h2>", 1)[0]
    assert shown == PREVIEW_ACCEPTED and cards.count('alt="image with boxes"') == shown, "every card has its picture"


@pytest.mark.slow
@pytest.mark.parametrize("source", ["vgr", "visualprocessbench"])
def test_each_image_is_decoded_once_per_run_thumbnails_included(demo, tmp_path, monkeypatch, source):
    decoded: Counter[str] = Counter()  # every decode of an image, by path
    passed: Counter[str] = Counter()  # the images the decode stage was given, by path
    real_decode, real_stage = images.decode, images.decode_images

    def decode(data, path, *args, **kwargs):
        decoded[path] += 1
        return real_decode(data, path, *args, **kwargs)

    def decode_images(sample, *args, **kwargs):
        passed.update(image.path for image in sample.images)
        return real_stage(sample, *args, **kwargs)

    monkeypatch.setattr(images, "decode", decode)  # FnApiRunner runs the job in this process
    monkeypatch.setattr(images, "decode_images", decode_images)
    out = tmp_path / "out"
    assert run_cli(*demo[source].argv(str(out)), "--max_reject_fraction=0.5") == 0
    dataset = dataset_named(source)
    drawn = Counter(  # a record validation rejected had its image decoded for the first time for its picture
        dataset.parse(line["record"], Provenance("f", 0, "c")).image_paths[0]
        for line in rejected_lines(out)
        if all(e["stage"] == "validate" for e in line["errors"])
    )
    again = {path: n for path, n in decoded.items() if n > passed[path] + drawn[path]}
    assert passed and not again, f"decoded again for the pages: {again}"
    page = (out / PREVIEW_PAGE).read_text()
    shown = int(re.search(r"<h2>Accepted \((\d+) shown\)</h2>", page).group(1))
    accepted = page.split("<h2>Accepted (", 1)[1].split("<h2>", 1)[0]
    assert shown > 0 and accepted.count('alt="image with boxes"') == shown, "every card has its picture"
