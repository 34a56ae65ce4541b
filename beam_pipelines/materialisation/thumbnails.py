"""The preview's thumbnails, made from the decode the run does anyway, for the few samples the preview can show.

The preview (`sinks.showcase`) shows the accepted samples with the smallest hash of their sample_id, and likewise
those with warnings. A sample is among the k smallest of a whole run only if it is among the k smallest of the
samples its worker has decoded so far, so `Candidates` keeps that running top-k per worker and a thumbnail is made
for those alone, while the image is decoded: no image is decoded a second time for the pages. A running top-k
still takes about k(1 + ln(n/k)) keys per worker, so the accepted ones are also held to the run's shortlist: the
`SHORTLIST` smallest keys of every record the id pass parsed (`within`, the largest of them). A card whose sample
lost its place after decoding (a later stage rejected samples with smaller hashes, or warned it), or that only
reached the preview because more than `SHORTLIST - PREVIEW_ACCEPTED` of the shortlist were rejected, has no
picture rather than a second decode.
"""

from __future__ import annotations

import bisect
import hashlib

import numpy as np
from PIL import Image

from beam_pipelines.materialisation.pixels import rgb_image

PREVIEW_ACCEPTED = 12
PREVIEW_WARNED = 6
THUMB_SIDE = 512
SHORTLIST = 4 * PREVIEW_ACCEPTED


def preview_key(text: str) -> str:
    """The order the preview picks in: a hash, so the choice depends on neither bundling nor input order."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RunningTop:
    """The k smallest keys offered so far; `offer` says whether a key is among them (a key offered again, as by
    a retried bundle, still is)."""

    def __init__(self, k: int):
        self.k = k
        self.keys: list[str] = []

    def offer(self, key: str) -> bool:
        at = bisect.bisect_left(self.keys, key)
        if at < len(self.keys) and self.keys[at] == key:
            return True
        if at >= self.k:
            return False
        self.keys.insert(at, key)
        del self.keys[self.k :]
        return True


def shortlist_end(top: RunningTop) -> str | None:
    """The largest key of a full shortlist, or None when the run has fewer records: then every key is within."""
    return top.keys[-1] if len(top.keys) == top.k else None


class Candidates:
    """Which decoded samples may appear in the preview: the running top-k of those on the shortlist (keys up to
    `within`; None: all), and the running top-k of those warned."""

    def __init__(self) -> None:
        self.accepted = RunningTop(PREVIEW_ACCEPTED)
        self.warned = RunningTop(PREVIEW_WARNED)

    def wanted(self, sample_id: str, warned: bool, within: str | None = None) -> bool:
        key = preview_key(sample_id)
        # both offered: each running top-k must see every key it ranks (a key past `within` never ranks)
        among_accepted = (within is None or key <= within) and self.accepted.offer(key)
        among_warned = warned and self.warned.offer(key)
        return among_accepted or among_warned


def thumbnail(pixels: Image.Image | np.ndarray) -> Image.Image:
    """A copy at most THUMB_SIDE on its longer side, for the preview to draw the boxes on (an array is copied
    once, into the image that is then shrunk)."""
    small = rgb_image(pixels) if isinstance(pixels, np.ndarray) else pixels.copy()
    small.thumbnail((THUMB_SIDE, THUMB_SIDE))
    return small
