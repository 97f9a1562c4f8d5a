"""Shared fixtures: paths, the synthetic dataset and the prepared data, built once per session."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture(scope="session")
def kangaroo_dir() -> Path:
    """The shared real LabelImg dataset; tests that need it skip when it is absent."""
    path = SHARED / "datasets" / "kangaroo"
    if not path.is_dir():
        pytest.skip("../shared/datasets/kangaroo is not present")
    return path


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A small synthetic LabelImg dataset made by `webdet synth`'s library call."""
    from data_prep.synth import make_dataset

    out = tmp_path_factory.mktemp("synth")
    make_dataset(out, images=48, seed=0)
    return out


@pytest.fixture(scope="session")
def prepared_dir(synth_dir, tmp_path_factory) -> Path:
    """`data/` as `webdet prepare` writes it, from the synthetic dataset."""
    from data_prep.prepare import prepare

    out = tmp_path_factory.mktemp("data")
    prepare([synth_dir], out, seed=0)
    return out
