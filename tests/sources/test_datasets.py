"""What every registered dataset declares holds: its id fields are exactly what defines a sample's id."""

import pytest

from beam_pipelines.sources.registry import dataset_named, names
from tests.helpers.records import PROV, conv_row, raw_row, vgr_row, vpb_row

PARSERS = {name: dataset_named(name).parse for name in names()}


ROWS = {"vgr": vgr_row, "visualprm": conv_row, "visualprm_raw": raw_row, "visualprocessbench": vpb_row}


def _changed(record: dict, field: str) -> dict:
    """The record with the value at a (dotted) field edited, keeping its type."""
    head, _, rest = field.partition(".")
    value = record[head]
    if rest:
        return {**record, head: _changed(value, rest)}
    if isinstance(value, str):
        edited = value + " (edited)"
    elif isinstance(value, int | float):
        edited = value + 1
    elif isinstance(value, list) and value and isinstance(value[-1], dict):
        last = value[-1]
        key = max((k for k, v in last.items() if isinstance(v, str)), key=lambda k: len(last[k]))
        edited = [*value[:-1], {**last, key: last[key] + " (edited)"}]
    else:
        edited = [*value, value[-1]]
    return {**record, head: edited}


@pytest.mark.parametrize("source", sorted(ROWS))
def test_id_fields_are_what_defines_the_sample_id(source):
    dataset = dataset_named(source)
    assert set(ROWS) == set(names())
    record = ROWS[source]()
    first = dataset.parse(record, PROV).sample_id
    assert first.startswith(f"{source}-")
    for field in dataset.id_fields:
        assert dataset.parse(_changed(record, field), PROV).sample_id != first, field
    assert dataset.parse({**record, "not_an_id_field": "x"}, PROV).sample_id == first
