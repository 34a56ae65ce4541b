"""The preview combiner: the same preview whatever the bundling, payloads built only for what stays in it."""

import dataclasses
import io

from PIL import Image

from beam_pipelines.materialisation.images import decode_images
from beam_pipelines.records import EncodedImage, LoadedImage, Provenance, Sample
from beam_pipelines.sinks.showcase import PREVIEW_ACCEPTED, Showcase
from beam_pipelines.sources.registry import dataset_named


def _samples(n: int) -> list[Sample]:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buf, format="PNG")
    image = LoadedImage("a.png", "/r/a.png", "as_written", EncodedImage(buf.getvalue(), "png", 40, 30), "PNG")
    base = Sample("", "vgr", "", Provenance("f", 0, "c"), ("a.png",), "q", "a", images=(image,))
    return [
        decode_images(dataclasses.replace(base, sample_id=f"vgr-{i}", provenance=Provenance("f", i, "c")), preview=True)
        for i in range(n)
    ]


def _fold(fn: Showcase, samples: list[Sample]) -> dict:
    acc = fn.create_accumulator()
    for sample in samples:
        acc = fn.add_input(acc, sample)
    return acc


def test_the_preview_does_not_depend_on_bundling():
    fn, samples = Showcase(dataset_named("vgr")), _samples(60)
    whole = fn.extract_output(_fold(fn, samples))
    parts = [fn.compact(_fold(fn, samples[i::3])) for i in range(3)]
    split = fn.extract_output(fn.merge_accumulators(parts))
    assert len(whole["accepted"]) == PREVIEW_ACCEPTED
    assert [e["sample_id"] for e in split["accepted"]] == [e["sample_id"] for e in whole["accepted"]]
    assert whole["accepted"][0]["image"].startswith("data:image/jpeg;base64,")


def test_payloads_are_built_when_the_accumulator_leaves_the_bundle():
    fn = Showcase(dataset_named("vgr"))
    acc = _fold(fn, _samples(40))
    assert len(acc["accepted"]) == PREVIEW_ACCEPTED
    assert all(isinstance(value, Sample) for _, value in acc["accepted"])
    compacted = fn.compact(acc)
    assert all(isinstance(value, dict) and value["image"] for _, value in compacted["accepted"])
    assert fn.compact(compacted) == compacted


def test_a_sample_decoded_without_its_thumbnail_is_shown_without_a_picture():
    fn = Showcase(dataset_named("vgr"))
    bare = [dataclasses.replace(s, images=(dataclasses.replace(s.images[0], thumbnail=None),)) for s in _samples(3)]
    shown = fn.extract_output(_fold(fn, bare))["accepted"]
    assert len(shown) == 3 and all(entry["image"] is None for entry in shown), "never a second decode"
