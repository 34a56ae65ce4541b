"""Raw records to samples: JSON Lines decoded, then the dataset's parser."""

from beam_pipelines.records import RawRecord
from beam_pipelines.sources.registry import dataset_named, names
from tests.helpers.records import PROV

PARSERS = {name: dataset_named(name).parse for name in names()}


def test_jsonl_line_with_byte_order_mark_parses():
    from beam_pipelines.sources.parsing import parse_raw

    line = "\ufeff".encode() + b'{"image": "a/b.png", "conversations": [{"from": "human", "value": "q"}, '
    line += b'{"from": "gpt", "value": "Final answer: 1"}]}'
    assert parse_raw(RawRecord("vgr", PROV, line=line), dataset_named("vgr")).answer == "1"
