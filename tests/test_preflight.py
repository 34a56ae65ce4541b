"""Mistakes caught at launch, in one line with a hint, before any job runs, and with the output left untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import report_of, run_cli


def one_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Error:" not in lines[0], "a user's mistake is said as it is, without an exception's name"
    return lines[0]


def test_the_files_of_an_unquoted_glob_fail_the_launch(demo, tmp_path, capsys):
    args = demo["visualprocessbench"].argv(str(tmp_path / "o"))
    at = args.index("--input") + 2
    extra = [str(tmp_path / "b.jsonl"), str(tmp_path / "c.jsonl")]
    assert run_cli(*args[:at], *extra, *args[at:]) == 2
    line = one_line(capsys)
    assert "'" + extra[0] + "'" in line and "quote it" in line and "repeat --input" in line
    assert not (tmp_path / "o").exists()


def test_an_image_root_that_holds_none_of_the_images_is_named_with_where_to_point_it(demo, tmp_path, capsys):
    run = demo["vgr"]
    parent = run.image_root.rsplit("/", 1)[0]
    assert run_cli(*run.argv(str(tmp_path / "o"))[:-4], "--image_root", parent, "--output", str(tmp_path / "o")) == 2
    line = one_line(capsys)
    assert "none of the first" in line and "0 of" in line and "chartqa/, coco/" in line
    assert (
        run_cli(*run.argv(str(tmp_path / "o"))[:-4], "--image_root", f"{parent}/gone", "--output", str(tmp_path / "o"))
        == 2
    )
    assert "does not exist" in one_line(capsys)
    assert (
        run_cli(*run.argv(str(tmp_path / "o"))[:-4], "--image_root", "images.tar.gz", "--output", str(tmp_path / "o"))
        == 2
    )
    assert "vgr-etl stage-images --archive images.tar.gz" in one_line(capsys)
    assert not (tmp_path / "o").exists()


def test_an_output_that_is_a_file_or_under_one(demo, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for output, said in (
        (tmp_path / "file", "is a file; give a directory"),
        (tmp_path / "file" / "o", "is a file, not a folder"),
    ):
        assert run_cli(*demo["vgr"].argv(str(output))) == 2
        assert said in one_line(capsys)


def test_records_of_another_layout_name_the_source_they_look_like(demo, tmp_path, capsys):
    vgr = demo["vgr"]
    args = ["--source", "visualprm", "--input", vgr.inputs[1], "--image_root", vgr.image_root]
    assert run_cli(*args, "--output", str(tmp_path / "o")) == 2
    line = one_line(capsys)
    assert "--source visualprm:" in line and "look like --source vgr" in line


def test_a_misspelt_source_is_one_line_with_a_suggestion(capsys, tmp_path):
    assert run_cli("--source=vrg", "--input=x", f"--image_root={tmp_path}", f"--output={tmp_path}/o") == 2
    line = one_line(capsys)
    assert line == (
        "vgr-etl: run failed: --source 'vrg': expected one of vgr, visualprm, visualprm_raw, visualprocessbench; "
        "did you mean 'vgr'?"
    )


HELP = """
import sys
from beam_pipelines.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print(sorted(m for m in ("apache_beam", "great_expectations", "torch") if m in sys.modules))
"""


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--help"], "stage-images  Unpack the upstream image archives"),
        (["run", "--help"], "--chunk_rows CHUNK_ROWS"),
        (["compact", "--help"], "usage: vgr-etl compact"),
        (["files", "--help"], "--kind {parquet_samples,parquet_regions,webdataset,index}"),
        (["stage-images", "--help"], "--archive ARCHIVE"),
        (["run", "--source=vrg"], "did you mean 'vgr'?"),
    ],
)
def test_help_and_launch_mistakes_answer_without_importing_beam(argv, says):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STORAGE_EMULATOR_HOST")}  # no test site
    done = subprocess.run([sys.executable, "-c", HELP.format(argv=argv)], capture_output=True, text=True, env=env)
    assert says in done.stdout + done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"')) == []


def test_run_help_shows_the_defaults_the_required_options_and_beams(capsys):
    from beam_pipelines.cli import main

    assert main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    assert "required:" in text and "--source {vgr,visualprm,visualprm_raw,visualprocessbench}" in text
    assert "(default: 1000)" in text and "--runner" in text and "docs/runners.md" in text


def _vpb_lines(demo) -> list[bytes]:
    with open(demo["visualprocessbench"].inputs[0], "rb") as f:
        return [line for line in f if line.strip()]


def _vpb_args(demo, input_: str, out) -> list[str]:
    run = demo["visualprocessbench"]
    return ["--source=visualprocessbench", f"--input={input_}", f"--image_root={run.image_root}", f"--output={out}"]


@pytest.mark.slow
def test_a_directory_reads_compressed_json_lines_and_says_what_it_does_not_read(demo, tmp_path, capsys):
    import bz2
    import gzip

    import zstandard

    lines = _vpb_lines(demo)
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + b"".join(lines[:3]))  # a UTF-8 byte-order mark first
    (folder / "b.jsonl.gz").write_bytes(gzip.compress(b"".join(lines[3:5])))
    (folder / "c.jsonl.bz2").write_bytes(bz2.compress(b"".join(lines[5:6])))
    (folder / "d.json.zst").write_bytes(zstandard.ZstdCompressor().compress(b"".join(lines[6:8])))
    (folder / "notes.txt").write_text("not records")
    (folder / "e.JSONL.txt").write_bytes(lines[0])
    (folder / "sub" / "f.jsonl").write_bytes(lines[0])
    out = tmp_path / "o"
    assert run_cli(*_vpb_args(demo, str(folder), out), "--max_reject_fraction=1") == 0
    err = capsys.readouterr().err
    assert "vgr-etl: note: 3 matched by --input not read" in err and "not read recursively" in err
    report = report_of(out)
    assert report["version"]["skipped_inputs"] == [
        str(folder / "e.JSONL.txt"),
        str(folder / "notes.txt"),
        str(folder / "sub") + "/",
    ]
    assert report["version"]["input_files"] == {"read": 4}
    assert report["input_records"] == 8 and report["invariant"]["holds"], "every line of the four files, once"
    assert report["rejected_by_check"].get("malformed_json", 0) == 0, "the byte-order mark is not part of record 1"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("utf16", "UTF-16 text (a byte-order mark), not UTF-8; re-encode it"),
        ("cr", "lines end in CR only"),
    ],
)
def test_text_inputs_that_would_be_misread_fail_the_launch(demo, tmp_path, capsys, content, says):
    lines = _vpb_lines(demo)[:3]
    path = tmp_path / "test.jsonl"
    if content == "utf16":
        path.write_bytes(b"".join(lines).decode("utf-8").encode("utf-16"))
    else:
        path.write_bytes(b"".join(line.rstrip(b"\r\n") + b"\r" for line in lines))
    assert run_cli(*_vpb_args(demo, str(path), tmp_path / "o")) == 2
    assert says in one_line(capsys)


def test_a_fifo_as_input_is_refused_not_waited_on(demo, tmp_path, capsys):
    fifo = tmp_path / "test.jsonl"
    os.mkfifo(fifo)
    assert run_cli(*_vpb_args(demo, str(fifo), tmp_path / "o")) == 2
    assert "a FIFO, not a regular file" in one_line(capsys)


@pytest.mark.slow
def test_an_output_in_the_input_directory_is_refused(demo, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "test.jsonl").write_bytes(b"".join(_vpb_lines(demo)))
    assert run_cli(*_vpb_args(demo, str(folder), folder)) == 2
    assert "is the --input directory" in one_line(capsys)
    assert run_cli(*_vpb_args(demo, str(folder), folder / "new" / "out")) == 2
    assert "is inside the --input directory" in one_line(capsys)
    assert not (folder / "new").exists(), "refused before anything is written"
    out = folder / "o"
    out.mkdir()
    (out / "report.json").write_text("{}")  # what an earlier run left, which a recursive glob matches
    assert run_cli(*_vpb_args(demo, str(folder / "**" / "*.json*"), out)) == 2
    assert "holds --input files" in capsys.readouterr().err
