"""Materialisation stages: load every image of a sample (bytes and header), decode it once, cut its regions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import apache_beam as beam
from apache_beam.transforms.error_handling import ErrorHandler
from PIL import Image

from beam_pipelines.materialisation import crops, images, replay, thumbnails
from beam_pipelines.records import Sample
from beam_pipelines.sources.dataset import Dataset
from beam_pipelines.stages import SampleStage, SampleStageFn


class _LoadImagesFn(SampleStageFn):
    stage = images.STAGE

    def __init__(self, dataset: Dataset, image_root: str, limits: images.ImageLimits):
        self.dataset = dataset
        self.image_root = image_root
        self.limits = limits

    def setup(self) -> None:
        super().setup()
        self.root = images.ImageRoot(self.image_root)
        Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, self.limits.max_pixels)

    def teardown(self) -> None:
        self.root.close()

    def apply(self, sample: Sample) -> Sample:
        loaded, budget = [], self.limits.max_sample_bytes
        for path in sample.image_paths:
            image = images.load_image(self.root, path, self.dataset, self.limits, sample.subset, budget)
            budget -= len(image.encoded.data)
            loaded.append(image)
        return replace(sample, images=tuple(loaded))


class LoadImages(SampleStage):
    """Each image's bytes and header (size, format, orientation), found under the root by the dataset's rules;
    the limits are checked before each image is read."""

    def __init__(self, dataset: Dataset, image_root: str, limits: images.ImageLimits, errors: ErrorHandler):
        super().__init__(_LoadImagesFn(dataset, image_root, limits), errors)


class _DecodeFn(SampleStageFn):
    stage = images.DECODE_STAGE

    def __init__(self, every_first_image: bool = False):
        self.every_first_image = every_first_image

    def setup(self) -> None:
        super().setup()
        self.candidates = thumbnails.Candidates()

    def apply(self, sample: Sample, within: str | None = None) -> Sample:
        preview = self.candidates.wanted(sample.sample_id, bool(sample.warnings), within)
        return images.decode_images(sample, self.every_first_image, preview)


class DecodeImages(SampleStage):
    """Each image decoded exactly once, after validation; the pixels feed cropping and replay (and, with
    `every_first_image`, the annotation model), and the preview's thumbnails are made here (`thumbnails`), held to
    the run's `shortlist` (`PreviewShortlist`) when there is one."""

    def __init__(self, errors: ErrorHandler, every_first_image: bool = False, shortlist=None):
        within = () if shortlist is None else (beam.pvalue.AsSingleton(shortlist, default_value=None),)
        super().__init__(_DecodeFn(every_first_image), errors, *within)


class _Shortlist(beam.CombineFn):
    """The `thumbnails.SHORTLIST` smallest preview keys of (sample_id, …) pairs, each id once; out: the largest."""

    def create_accumulator(self) -> thumbnails.RunningTop:
        return thumbnails.RunningTop(thumbnails.SHORTLIST)

    def add_input(self, top: thumbnails.RunningTop, keyed: tuple[str, Any]) -> thumbnails.RunningTop:
        top.offer(thumbnails.preview_key(keyed[0]))
        return top

    def merge_accumulators(self, tops: Iterable[thumbnails.RunningTop]) -> thumbnails.RunningTop:
        tops = iter(tops)
        merged = next(tops)
        for top in tops:
            for key in top.keys:
                merged.offer(key)
        return merged

    def extract_output(self, top: thumbnails.RunningTop) -> str | None:
        return thumbnails.shortlist_end(top)


class PreviewShortlist(beam.PTransform):
    """The end of the run's preview shortlist (one element; None: fewer records than the shortlist holds), from
    the (sample_id, …) pairs of the id pass: the preview's accepted thumbnails are made for keys up to it alone."""

    def expand(self, keyed):
        return keyed | "Smallest" >> beam.CombineGlobally(_Shortlist()).without_defaults()


class _CropFn(SampleStageFn):
    stage = crops.STAGE

    def __init__(self, settings: crops.CropSettings):
        self.settings = settings

    def apply(self, sample: Sample) -> Sample:
        return crops.crop_regions(sample, self.settings)


class CropRegions(SampleStage):
    def __init__(self, settings: crops.CropSettings, errors: ErrorHandler):
        super().__init__(_CropFn(settings), errors)


class _ReplayFn(SampleStageFn):
    stage = "replay"

    def __init__(self, config: replay.ReplayPreset, pixels: bool, keep_pixels: bool):
        self.config = config
        self.pixels = pixels
        self.keep_pixels = keep_pixels

    def apply(self, sample: Sample) -> Sample:
        replayed = replay.compute_replay(sample, self.config, self.pixels)
        return replayed if self.keep_pixels else images.release_pixels(replayed)


class ComputeReplay(SampleStage):
    """Replay geometry for every region (and per-sample visual tokens), from the image decoded for cropping.

    The decoded pixels are released here unless a later stage reads them (`keep_pixels`: scoring).
    """

    def __init__(self, config: replay.ReplayPreset, pixels: bool, errors: ErrorHandler, keep_pixels: bool = False):
        super().__init__(_ReplayFn(config, pixels, keep_pixels), errors)
