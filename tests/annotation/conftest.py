"""Tiny vision-language models, built from configs once per session (see `models`)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.annotation.models import save_fixed_llava, save_tiny_internvl, save_tiny_llava


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory) -> str:
    return save_tiny_llava(tmp_path_factory.mktemp("tiny_llava"))


@pytest.fixture(scope="session")
def tiny_internvl(tmp_path_factory) -> str:
    return save_tiny_internvl(tmp_path_factory.mktemp("tiny_internvl"))


@pytest.fixture(scope="session")
def fixed_llava(tmp_path_factory) -> str:
    return save_fixed_llava(tmp_path_factory.mktemp("fixed_llava"))
