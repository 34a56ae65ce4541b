"""schemas/*.json are generated from the code; they must not drift."""

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from beam_pipelines.sinks import schema
from beam_pipelines.sinks.features import TABLES, write_schema_files
from beam_pipelines.sinks.schema import SAMPLE_SCHEMA

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_schemas_match_the_code(tmp_path):
    write_schema_files(tmp_path, tmp_path / "arrow")
    for generated in tmp_path.glob("*.json"):
        assert json.loads(generated.read_text()) == json.loads((ROOT / "schemas" / generated.name).read_text())
    for generated in (tmp_path / "arrow").glob("*.arrows"):
        assert generated.read_bytes() == (schema.PACKAGE_SCHEMAS / generated.name).read_bytes(), generated.name


def test_the_writers_schemas_are_the_declared_features_and_need_no_datasets_import():
    declared = {name: features.arrow_schema for name, features in TABLES.items()}
    used = {"samples": schema.SAMPLE_SCHEMA, "regions": schema.REGION_SCHEMA, "index": schema.INDEX_SCHEMA}
    assert all(used[name].equals(declared[name], check_metadata=True) for name in declared)
    code = "import sys, beam_pipelines.launcher; print('datasets' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_arrow_schema_carries_huggingface_image_features(tmp_path):
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist([], schema=SAMPLE_SCHEMA), tmp_path / "x.parquet")
    meta = json.loads(pq.read_schema(tmp_path / "x.parquet").metadata[b"huggingface"])
    assert meta["info"]["features"]["image"] == {"_type": "Image"}
