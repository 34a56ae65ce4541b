"""Each upstream layout parses into the canonical sample, and malformed records reject with a reason."""

import pytest

from beam_pipelines.records import Provenance, RejectedError
from beam_pipelines.sources import prm
from beam_pipelines.sources.registry import dataset_named, names

PARSERS = {name: dataset_named(name).parse for name in names()}

PROV = Provenance("/data/geometry3k_en_20240402_extracted_prm.jsonl", 3, "c-00000")


def vgr_row(
    gpt="<think> a <SOT>[0.1, 0.2, 0.3, 0.4]<EOT><image> b </think> Final answer: 305", image="ai2d/abc_images/311.png"
):
    return {
        "image": image,
        "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": gpt}],
    }


def test_vgr_fields():
    s = PARSERS["vgr"](vgr_row(), PROV)
    assert (s.source, s.subset, s.question, s.answer, s.reasoning) == ("vgr", "ai2d", "What?", "305", "a b")
    assert s.image_paths == ("ai2d/abc_images/311.png",)
    assert "." not in s.sample_id and s.sample_id.startswith("vgr-")


@pytest.mark.parametrize(
    "image, subset",
    [("./coco/train2017/b.jpg", "coco"), ("coco\\train2017\\b.jpg", "coco"), ("b.jpg", ""), ("./b.jpg", "")],
)
def test_vgr_subset_is_the_images_top_folder_however_the_path_is_written(image, subset):
    assert PARSERS["vgr"](vgr_row(image=image), PROV).subset == subset


def test_vgr_one_element_image_list_and_case_insensitive_answer():
    s = PARSERS["vgr"](vgr_row(gpt="x <SOT>[0.1,0.1,0.2,0.2]<EOT> Final Answer: Yes", image=["a/b.png"]), PROV)
    assert s.answer == "Yes" and s.image_paths == ("a/b.png",)


def test_vgr_facts_for_the_suite():
    gpt = "<think> a <SOT> b <image> c <SOT>[0.1,0.1,0.2,0.2]<EOT> d"
    s = PARSERS["vgr"](vgr_row(gpt=gpt), PROV)
    assert s.facts == {
        "think_open": 1,
        "think_close": 0,
        "final_answer": 0,
        "turn_pattern": "human,gpt",
        "orphan_tags": 1,
        "stray_image_markers": 1,
    }
    assert s.warnings == () and len(s.regions) == 1


def test_sample_id_is_content_derived_and_provenance_free():
    a = PARSERS["vgr"](vgr_row(), PROV)
    b = PARSERS["vgr"](vgr_row(), Provenance("/other/file.parquet", 99, "x"))
    c = PARSERS["vgr"](vgr_row(image="ai2d/abc_images/312.png"), PROV)
    assert a.sample_id == b.sample_id != c.sample_id


@pytest.mark.parametrize(
    ("record", "check"),
    [
        ({"conversations": []}, "missing_field"),
        ({"image": 3, "conversations": []}, "wrong_type"),
        ({"image": "a.png", "conversations": "no"}, "wrong_type"),
        ({"image": "a.png", "conversations": [{"from": "human"}]}, "missing_field"),
        ({"image": "a.png", "conversations": [{"from": "human", "value": "q"}]}, "missing_turn"),
        ({"image": [], "conversations": []}, "missing_field"),
    ],
)
def test_vgr_malformed(record, check):
    with pytest.raises(RejectedError) as err:
        PARSERS["vgr"](record, PROV)
    assert err.value.info.check == check


def conv_row(labels=("+", "-"), first=None):
    turns = [{"from": "system", "value": "You are a PRM."}]
    first = first or "### Question:\n<image>\nYour task...\n\nQuestion:\n\nFind m.\n\n### Solution Process:\nStep zero."
    for i, label in enumerate(labels):
        turns += [{"from": "human", "value": first if i == 0 else f"Step {i}."}, {"from": "gpt", "value": label}]
    return {"id": -1, "image": "Geometry3K/train/1/img.png", "conversations": turns}


def test_visualprm_conversation_form():
    s = PARSERS["visualprm"](conv_row(), PROV)
    assert s.question == "Find m." and s.subset == "geometry3k_en_20240402_extracted"
    assert [(st.text, st.label, st.correctness) for st in s.steps] == [("Step zero.", "+", 1), ("Step 1.", "-", -1)]
    assert s.metadata == {"id": -1}
    assert {(st.mc_score, st.measured) for st in s.steps} == {(None, None)}  # Monte Carlo fields: Raw form only


def test_visualprm_parser_is_lenient_and_leaves_shape_to_the_suites():
    s = PARSERS["visualprm"](conv_row(labels=("+", "maybe")), PROV)
    assert [(st.label, st.correctness) for st in s.steps] == [("+", 1), (None, 0)]
    s = PARSERS["visualprm"](conv_row(first="no headers"), PROV)
    assert s.prompt == "" and s.steps[0].text == "no headers"
    s = PARSERS["visualprm"]({**conv_row(), "conversations": conv_row()["conversations"][:-1]}, PROV)
    assert len(s.steps) == 1


def raw_row(steps=None):
    steps = steps or [
        {"step": "a", "score": 0.5, "num_mc_correct": 8, "num_mc_total": 16},
        {"step": "b", "score": 0.0, "num_mc_correct": 0, "num_mc_total": 16},
        {"step": "Final answer: 3", "score": 0.0, "num_mc_correct": 0, "num_mc_total": 0},
    ]
    return {
        "image": "VisualPRM400K-v1.1-Raw/Geometry3K/train/1/img.png",
        "question": "<image>\nQ",
        "question_orig": "Q",
        "answer": 3,
        "response": "a\n\nb",
        "num_mc_sequences": 16,
        "steps_with_score": steps,
    }


def test_visualprm_raw_official_label_rule_and_early_stop_tail():
    s = PARSERS["visualprm_raw"](raw_row(), PROV)
    assert [st.label for st in s.steps] == ["+", "-", "-"]
    assert [st.measured for st in s.steps] == [True, True, False]
    assert s.answer == "3" and s.question == "Q"


@pytest.mark.parametrize(
    ("steps", "check"),
    [
        ([{"step": "a", "score": float("nan"), "num_mc_correct": 0, "num_mc_total": 16}], "non_finite"),
        ([{"step": "a", "score": "high", "num_mc_correct": 0, "num_mc_total": 16}], "wrong_type"),
        ([{"step": "a", "score": 0.5, "num_mc_correct": 8}], "missing_field"),
        (["just text"], "wrong_type"),
    ],
)
def test_visualprm_raw_malformed(steps, check):
    with pytest.raises(RejectedError) as err:
        PARSERS["visualprm_raw"](raw_row(steps), PROV)
    assert err.value.info.check == check


def vpb_row(steps=("a", "b", "c"), labels=(1, 0, -1)):
    return {
        "image": ["images/DynaMath/1.png"],
        "question": "Q <image1>",
        "answer": "5",
        "response": {"steps": list(steps), "process_correctness": list(labels)},
        "policy_model": "lmdeploy_internvl",
        "data_source": "DynaMath",
    }


def test_visualprocessbench():
    s = PARSERS["visualprocessbench"](vpb_row(), PROV)
    assert [(st.label, st.correctness) for st in s.steps] == [("+", 1), (None, 0), ("-", -1)]
    assert s.subset == "DynaMath" and s.metadata["policy_model"] == "lmdeploy_internvl"


def test_visualprocessbench_parser_is_lenient_and_leaves_labels_to_the_suites():
    s = PARSERS["visualprocessbench"](vpb_row(labels=(1, 0)), PROV)
    assert len(s.steps) == 2
    s = PARSERS["visualprocessbench"](vpb_row(labels=(1, 2, True)), PROV)
    assert [(st.label, st.correctness) for st in s.steps] == [("+", 1), (None, 0), (None, 0)]


def test_original_question_unwraps_the_rollout_instruction():
    assert prm.original_question("<image>\nYour task ...\n\nQuestion:\n\nFind x.") == "Find x."


def test_visualprm_tolerates_a_placeholder_before_the_question_header():
    row = conv_row(first="<image>\n### Question:\nFind m.\n\n### Solution Process:\nStep zero.")
    s = PARSERS["visualprm"](row, PROV)
    assert s.question == "Find m." and s.steps[0].text == "Step zero."


def test_jsonl_line_with_byte_order_mark_parses():
    from beam_pipelines.records import RawRecord
    from beam_pipelines.sources.parsing import parse_raw

    line = "\ufeff".encode() + b'{"image": "a/b.png", "conversations": [{"from": "human", "value": "q"}, '
    line += b'{"from": "gpt", "value": "Final answer: 1"}]}'
    assert parse_raw(RawRecord("vgr", PROV, line=line), dataset_named("vgr")).answer == "1"


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
