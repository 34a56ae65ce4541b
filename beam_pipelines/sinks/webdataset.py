"""`webdataset/<unit>-<part>.tar`: one WebDataset sample per accepted sample, key = sample_id.

Members: `<key>.image.<ext>` (the original image bytes; further images as `image1.<ext>`, ...),
`<key>.json` (the record without bytes), `<key>.rNNN.<ext>` per region crop, `<key>.rNNN.replay_idx.npy`
(1-D int32 replay token indices), with `--replay_pixels` `<key>.rNNN.replay.npy` (uint8 H×W×3), and with
`--replay_features` `<key>.rNNN.replay_feat.npy` (float16 [tokens, dim]). Tar headers are
fixed (mtime 0, uid/gid 0; `sinks.tar_writer`) so reruns give byte-identical shards; the stream is closed
explicitly, which is what commits an object on gs://.
"""

from __future__ import annotations

from beam_pipelines.materialisation.replay import npy_bytes
from beam_pipelines.records import Sample
from beam_pipelines.sinks.schema import crop_name, record_fields, to_json
from beam_pipelines.sinks.shards import ChunkWriterFn
from beam_pipelines.sinks.tar_writer import TarWriter

REPLAY_JSON_FIELDS = (
    "anyres_best_resolution",
    "anyres_resized_size",
    "anyres_paste_offset",
    "replay_grid_box",
    "replay_token_count",
)


def members(sample: Sample) -> list[tuple[str, bytes]]:
    """(member name, bytes) of one sample, in a fixed order."""
    key = sample.sample_id
    record = record_fields(sample)
    out = []
    for i, image in enumerate(sample.images):
        field = "image" if i == 0 else f"image{i}"
        out.append((f"{key}.{field}.{image.encoded.ext}", image.encoded.data))
    for region, fields in zip(sample.regions, record["regions"], strict=True):
        assert region.crop is not None
        name = crop_name(key, region.region_index, region.crop.ext)
        fields["crop"] = name.split(".", 1)[1]
        out.append((name, region.crop.data))
        replay = region.replay or {}
        prefix = f"{key}.r{region.region_index:03d}"
        if replay.get("replay_token_indices") is not None:
            out.append((f"{prefix}.replay_idx.npy", npy_bytes(replay["replay_token_indices"])))
            fields.update({k: replay[k] for k in REPLAY_JSON_FIELDS})
        if replay.get("replay_pixels") is not None:
            out.append((f"{prefix}.replay.npy", npy_bytes(replay["replay_pixels"])))
        if replay.get("replay_features") is not None:
            out.append((f"{prefix}.replay_feat.npy", npy_bytes(replay["replay_features"])))
    out.insert(len(sample.images), (f"{key}.json", to_json(record).encode("utf-8")))
    return out


class WebDatasetShardWriterFn(ChunkWriterFn):
    kind = "webdataset"

    def open_shard(self, name: str) -> None:
        self._file = self.target.open(self.kind, name)
        self._tar = TarWriter(self._file)

    def write(self, element: Sample) -> None:
        for name, data in members(element):
            self._tar.add(name, data)

    def close_shard(self):
        self._tar.close()
        self._file.commit()
        yield self.target.written(self._file, self.kind, self._rows, self.unit)
