"""Reading a model's spec and copying it from a remote filesystem (gs:// on the GCS emulator)."""

import json
import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from apache_beam.io.filesystems import FileSystems

from beam_pipelines.scoring.spec import OPENAI_CLIP_MEAN, TOKENIZER_FILES, local_copy, read_spec


def test_spec_of_a_saved_clip(tiny_clip):
    spec = read_spec(tiny_clip)
    assert (spec.image_size, spec.patch_size, spec.vision_hidden, spec.max_text_tokens) == (56, 14, 32, 32)
    assert spec.mean == OPENAI_CLIP_MEAN and spec.fill == (123, 117, 104)


def test_a_processor_config_overrides_the_normalisation(copied_clip):
    (copied_clip / "preprocessor_config.json").write_text(
        '{"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}'
    )
    spec = read_spec(str(copied_clip))
    assert spec.mean == (0.5, 0.5, 0.5) and spec.std == (0.5, 0.5, 0.5)


def test_a_directory_that_is_not_a_clip_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"no config\.json"):
        read_spec(str(tmp_path))
    (tmp_path / "config.json").write_text('{"model_type": "vit"}')
    with pytest.raises(ValueError, match="not a CLIP model"):
        read_spec(str(tmp_path))


@pytest.fixture
def copied_clip(tiny_clip, tmp_path) -> Path:
    for name in os.listdir(tiny_clip):
        (tmp_path / name).write_bytes(Path(tiny_clip, name).read_bytes())
    return tmp_path


def test_a_model_without_tokenizer_files_is_refused(copied_clip):
    """transformers would build a tokenizer of special tokens only: every text alike, every score meaningless."""
    for name in ("tokenizer.json", "vocab.json"):
        (copied_clip / name).unlink(missing_ok=True)
    with pytest.raises(ValueError, match="no tokenizer files"):
        read_spec(str(copied_clip))


def test_a_model_of_another_type_is_refused_at_launch(copied_clip):
    config = json.loads((copied_clip / "config.json").read_text())
    (copied_clip / "config.json").write_text(json.dumps({**config, "model_type": "siglip"}))
    with pytest.raises(ValueError, match="'siglip' is not a CLIP model"):
        read_spec(str(copied_clip))


def test_a_config_with_the_old_tower_keys_is_read(tiny_clip, copied_clip):
    config = json.loads((copied_clip / "config.json").read_text())
    config["vision_config_dict"], config["text_config_dict"] = config.pop("vision_config"), config.pop("text_config")
    (copied_clip / "config.json").write_text(json.dumps(config))
    assert read_spec(str(copied_clip)) == replace(read_spec(tiny_clip), path=str(copied_clip))


@pytest.fixture
def gcs(monkeypatch):
    emulator = pytest.importorskip("gcp_storage_emulator.server")
    from apache_beam.internal.gcp import auth

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = emulator.create_server("127.0.0.1", port, in_memory=True, default_bucket="models")
    server.start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    # skip Beam's ~25 s of credential retries: anonymous access, as on the emulator
    monkeypatch.setattr(auth._Credentials, "_credentials_init", True)
    monkeypatch.setattr(auth._Credentials, "_credentials", None)
    yield "gs://models"
    server.stop()


def test_a_gs_model_is_read_and_copied_locally_once(tiny_clip, gcs):
    remote = f"{gcs}/clip"
    for name in os.listdir(tiny_clip):
        with FileSystems.create(f"{remote}/{name}") as f:
            f.write(Path(tiny_clip, name).read_bytes())
    assert read_spec(remote) == replace(read_spec(tiny_clip), path=remote)
    local = local_copy(remote)
    assert sorted(os.listdir(local)) == sorted(os.listdir(tiny_clip))
    for name in os.listdir(tiny_clip):
        assert Path(local, name).read_bytes() == Path(tiny_clip, name).read_bytes()
    assert local_copy(remote) == local
    tokenizer_only = local_copy(remote, TOKENIZER_FILES)
    assert "model.safetensors" not in os.listdir(tokenizer_only) and "tokenizer.json" in os.listdir(tokenizer_only)
    assert local_copy(tiny_clip) == tiny_clip
