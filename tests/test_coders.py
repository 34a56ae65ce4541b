"""OutcomeCoder: pickles outcomes faithfully, sizes them without encoding, and codes the per-record streams."""

import dataclasses
import io
import pickle

import apache_beam as beam
import numpy as np
import pytest
from PIL import Image

from beam_pipelines.coders import MAX_ESTIMATE, RECORD_OVERHEAD, OutcomeCoder, estimated_bytes
from beam_pipelines.options import VgrEtlOptions
from beam_pipelines.pipeline import build_pipeline
from beam_pipelines.records import Duplicate, EncodedImage, ErrorInfo, LoadedImage, Provenance, Region, Sample
from tests.conftest import demo  # noqa: F401  (fixture)


def sample(pixels: bool) -> Sample:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    encoded = EncodedImage(buf.getvalue(), "png", 160, 120)
    loaded = LoadedImage("a.png", "/r/a.png", "as_written", encoded, "PNG", pixels=image if pixels else None)
    crop = EncodedImage(b"c" * 5000, "png", 10, 10)
    region = Region(0, (0.1, 0.1, 0.2, 0.2), (0.1, 0.1, 0.2, 0.2), True, None, "ctx", (16, 12, 32, 24), crop)
    return Sample(
        "vgr-1", "vgr", "", Provenance("f", 3, "c"), ("a.png",), "q", "a", regions=(region,), images=(loaded,)
    )


def test_round_trip_keeps_every_field_and_the_pixels():
    coder = OutcomeCoder()
    original = sample(pixels=True)
    decoded = coder.decode(coder.encode(original))
    assert decoded == original
    assert np.array_equal(np.asarray(decoded.images[0].pixels), np.asarray(original.images[0].pixels))
    duplicate = Duplicate("vgr", Provenance("f", 4, "c"), "vgr-1", Provenance("f", 3, "c"))
    assert coder.decode(coder.encode(duplicate)) == duplicate
    rejection = original.reject(ErrorInfo("crop", "box_empty", "no pixels"))
    assert coder.decode(coder.encode(rejection)) == rejection


def test_size_estimate_follows_the_payload_without_encoding():
    lean, heavy = sample(pixels=False), sample(pixels=True)
    encoded = len(pickle.dumps(lean, protocol=pickle.HIGHEST_PROTOCOL))
    assert encoded <= OutcomeCoder().estimate_size(lean) <= encoded + RECORD_OVERHEAD
    assert estimated_bytes(heavy) - estimated_bytes(lean) == 3 * 160 * 120  # the decoded pixels
    assert estimated_bytes(lean.reject(ErrorInfo("s", "c", "m"))) == RECORD_OVERHEAD


@pytest.mark.slow
def test_per_record_streams_use_the_outcome_coder(demo):  # noqa: F811
    options = VgrEtlOptions([*demo["vgr"].argv("/nonexistent"), "--runner=FnApiRunner"])
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, options)
    proto = pipeline.to_runner_api().components
    stages = ("ParseSamples/", "ValidateRecords/", "LoadImages/", "ValidateImages/", "DecodeImages/", "CropRegions/")
    payloads = {
        t.unique_name: proto.coders[proto.pcollections[t.outputs["None"]].coder_id].spec.payload
        for t in proto.transforms.values()
        if not t.subtransforms
        and t.unique_name.startswith((*stages, "ComputeReplay/"))
        and "None" in t.outputs
        and "Errors" not in t.unique_name
    }
    assert len(payloads) >= 7
    assert [name for name, payload in payloads.items() if b"OutcomeCoder" not in payload] == []


def test_an_estimate_past_31_bits_is_capped_not_an_overflow():
    """A VisualProcessBench record listing one 20 MB image 110 times: 2.2 GB estimated, which Beam's size
    counters cannot hold (OverflowError); the same bytes object stands for all 110 here."""
    data = bytes(20 * 1024 * 1024)
    image = LoadedImage("a.png", "/r/a.png", "as_written", EncodedImage(data, "png", 10, 10), "PNG")
    sample = Sample("s", "visualprocessbench", "", Provenance("f", 0, "c"), ("a.png",) * 110, "q", "a")
    big = dataclasses.replace(sample, images=(image,) * 110)
    assert estimated_bytes(big) == MAX_ESTIMATE == 2**31 - 1
    assert OutcomeCoder().estimate_size(big) == MAX_ESTIMATE
