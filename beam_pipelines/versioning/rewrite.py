"""Rewriting units: the one file operation behind the drop policy and compaction.

`rewrite_units` streams the files of one or more units of a version, kind by kind, into one new unit, leaving out
the samples whose id is in `drop` (their Parquet rows, regions, index rows and tar members). Rows keep their
order; files are streamed a row group (or a tar member) at a time, so memory stays bounded whatever the unit size.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from beam_pipelines.files import AtomicFile, WrittenFile, open_read
from beam_pipelines.layout import DATASET_KINDS, OutputLayout, part_name
from beam_pipelines.sinks.parquet import ROW_GROUP, writer_options
from beam_pipelines.versioning.manifest import Unit


def open_file(output: str, path: str):
    """A file of the dataset, by its path relative to the output root (as manifests list them)."""
    return open_read(OutputLayout(output).path(path))


def _kept(table: pa.Table, drop: frozenset[str]) -> pa.Table:
    if not drop:
        return table
    dropped = pc.is_in(table["sample_id"], value_set=pa.array(sorted(drop), pa.string()))
    return table.filter(pc.invert(dropped))


def _merge_parquet(output: str, paths: Iterable[str], drop: frozenset[str], out: AtomicFile) -> int:
    writer, rows = None, 0
    for path in paths:
        with open_file(output, path) as src:
            parquet = pq.ParquetFile(src)
            for batch in parquet.iter_batches(batch_size=ROW_GROUP):
                table = _kept(pa.Table.from_batches([batch], schema=parquet.schema_arrow), drop)
                if not table.num_rows:
                    continue
                if writer is None:
                    writer = pq.ParquetWriter(out, parquet.schema_arrow, **writer_options(parquet.schema_arrow))
                writer.write_table(table)
                rows += table.num_rows
    if writer is not None:
        writer.close()
    return rows


def _merge_tars(output: str, paths: Iterable[str], drop: frozenset[str], out: AtomicFile) -> int:
    keys: set[str] = set()
    with tarfile.open(fileobj=out, mode="w") as tar_out:
        for path in paths:
            with open_file(output, path) as src, tarfile.open(fileobj=src, mode="r|") as tar_in:
                for member in tar_in:
                    key = member.name.split(".", 1)[0]
                    if key in drop:
                        continue
                    keys.add(key)
                    tar_out.addfile(member, tar_in.extractfile(member))
    return len(keys)


def rewrite_units(output: str, unit: str, sources: list[Unit], drop: frozenset[str] = frozenset()) -> list[WrittenFile]:
    """The files of `sources` (in order) without the samples in `drop`, as the unit `unit` (one part per kind).

    A kind whose rows are all dropped gets no file; the caller sizes groups so that one part per kind fits.
    """
    layout = OutputLayout(output)
    infos = []
    for kind in DATASET_KINDS:
        paths = [f.path for u in sources for f in u.of_kind(kind)]
        if not paths:
            continue
        out = AtomicFile(layout.data_file(kind, part_name(unit, 0)), layout.scratch)
        merge = _merge_tars if kind == "webdataset" else _merge_parquet
        rows = merge(output, paths, drop, out)
        if rows:
            out.commit()
            infos.append(out.written(output, kind, rows, unit))
        else:
            out.abort()
    return infos
