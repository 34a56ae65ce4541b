"""Thumbnails are made at the one decode, for every sample the preview can end up showing."""

import random
import re
from collections import Counter

import pytest

from beam_pipelines.layout import PREVIEW_PAGE
from beam_pipelines.materialisation import images
from beam_pipelines.materialisation.thumbnails import PREVIEW_ACCEPTED, Candidates, RunningTop, preview_key
from beam_pipelines.records import Provenance
from beam_pipelines.sources.registry import dataset_named
from tests.conftest import rejected_lines, run_cli


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
