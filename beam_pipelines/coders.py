"""The Beam coder of the per-record streams (`records.Outcome`): pickle, sized without encoding.

Beam estimates the byte size of a sample of every PCollection's elements for its size metrics. With the fallback
coder an estimate is a full pickle: for a sample that carries its image bytes, and its decoded pixels between
decoding and replay, that is megabytes copied to be measured and thrown away. `OutcomeCoder` encodes exactly as
the fallback does (standard pickle) and estimates from the payload sizes the records already know. `stages`
registers it for `Outcome`, the output type the stages declare.
"""

from __future__ import annotations

import pickle

import apache_beam as beam

from beam_pipelines.records import Outcome, Sample

RECORD_OVERHEAD = 1024  # text, ids and provenance of a record: small next to any image
MAX_ESTIMATE = 2**31 - 1
"""Beam's size estimates must fit 31 bits: a bigger one (a sample of gigabytes of images) raised OverflowError."""


def estimated_bytes(value: Outcome) -> int:
    """Roughly what `OutcomeCoder.encode(value)` would take: image bytes, decoded pixels, thumbnails and crops,
    plus overhead."""
    if not isinstance(value, Sample):
        return RECORD_OVERHEAD
    images = sum(
        len(img.encoded.data)
        + (3 * img.encoded.width * img.encoded.height if img.pixels is not None else 0)
        + (3 * img.thumbnail.width * img.thumbnail.height if img.thumbnail is not None else 0)
        for img in value.images
    )
    crops = sum(len(region.crop.data) for region in value.regions if region.crop is not None)
    return min(RECORD_OVERHEAD + images + crops, MAX_ESTIMATE)


class OutcomeCoder(beam.coders.Coder):
    """Pickle (protocol 5), as Beam's fallback coder; `estimate_size` without encoding."""

    def encode(self, value: Outcome) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def decode(self, encoded: bytes) -> Outcome:
        return pickle.loads(encoded)

    def is_deterministic(self) -> bool:
        return False

    def estimate_size(self, value: Outcome) -> int:
        return estimated_bytes(value)

    def to_type_hint(self) -> type:
        return Outcome
