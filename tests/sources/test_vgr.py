"""VGR-SFT rows parse into samples with their regions, reasoning and answer; malformed ones reject with a reason."""

import pytest

from beam_pipelines.records import Provenance, RejectedError
from beam_pipelines.sources.registry import dataset_named, names
from tests.helpers.records import PROV, vgr_row

PARSERS = {name: dataset_named(name).parse for name in names()}


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
