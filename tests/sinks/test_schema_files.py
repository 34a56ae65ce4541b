"""schemas/*.json are generated from the code; they must not drift."""

import json
from pathlib import Path

import pyarrow.parquet as pq

from beam_pipelines.sinks.schema import SAMPLE_SCHEMA, write_schema_files

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_schemas_match_the_code(tmp_path):
    write_schema_files(tmp_path)
    for generated in tmp_path.glob("*.json"):
        assert json.loads(generated.read_text()) == json.loads((ROOT / "schemas" / generated.name).read_text())


def test_arrow_schema_carries_huggingface_image_features(tmp_path):
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist([], schema=SAMPLE_SCHEMA), tmp_path / "x.parquet")
    meta = json.loads(pq.read_schema(tmp_path / "x.parquet").metadata[b"huggingface"])
    assert meta["info"]["features"]["image"] == {"_type": "Image"}
