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
    make_dataset(out, images=120, seed=0)
    return out


@pytest.fixture(scope="session")
def prepared_dir(synth_dir, tmp_path_factory) -> Path:
    """`data/` as `webdet prepare` writes it, from the synthetic dataset."""
    from data_prep.prepare import prepare

    out = tmp_path_factory.mktemp("data")
    prepare([synth_dir], out, seed=0)
    return out


TINY_RUN_STEPS = 600


@pytest.fixture(scope="session")
def tiny_run(prepared_dir, tmp_path_factory) -> Path:
    """A run of the tiny config trained long enough on synthetic data to find the shapes."""
    from training.config import apply_overrides, load_config
    from training.train import train

    run = tmp_path_factory.mktemp("runs") / "tiny"
    config = apply_overrides(load_config("tiny"), [f"train.steps={TINY_RUN_STEPS}", "train.eval_every_epochs=10"])
    train(prepared_dir, run, config, progress=False, log=lambda *_: None)
    return run


@pytest.fixture(scope="session")
def exported_dir(tiny_run, prepared_dir, tmp_path_factory) -> Path:
    """`webdet export` of the tiny run: SavedModel + web model + metadata, parity checked."""
    from export.exporter import export_run

    out = tmp_path_factory.mktemp("export") / "tiny"
    export_run(tiny_run, out, data_dir=prepared_dir, log=lambda *_: None)
    return out
