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
    from webdet.data_prep.synth import make_dataset

    out = tmp_path_factory.mktemp("synth")
    make_dataset(out, images=120, seed=0)
    return out


@pytest.fixture(scope="session")
def prepared_dir(synth_dir, tmp_path_factory) -> Path:
    """`data/` as `webdet prepare` writes it, from the synthetic dataset."""
    from webdet.data_prep.prepare import prepare

    out = tmp_path_factory.mktemp("data")
    prepare([synth_dir], out, seed=0)
    return out


TINY_RUN_STEPS = 600


@pytest.fixture(scope="session")
def tiny_run(prepared_dir, tmp_path_factory) -> Path:
    """A run of the tiny config trained long enough on synthetic data to find the shapes."""
    from webdet.training.config import apply_overrides, load_config
    from webdet.training.train import train

    run = tmp_path_factory.mktemp("runs") / "tiny"
    config = apply_overrides(load_config("tiny"), [f"train.steps={TINY_RUN_STEPS}", "train.eval_every_epochs=10"])
    train(prepared_dir, run, config, progress=False, log=lambda *_: None)
    return run


@pytest.fixture(scope="session")
def exported_dir(tiny_run, prepared_dir, tmp_path_factory) -> Path:
    """`webdet export` of the tiny run: SavedModel + web model + metadata, parity checked."""
    from webdet.export.exporter import export_run

    out = tmp_path_factory.mktemp("export") / "tiny"
    export_run(tiny_run, out, data_dir=prepared_dir, log=lambda *_: None)
    return out


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """Debian's redis-server on a free loopback port for this test session (`make test` installs it)."""
    import shutil
    import subprocess
    import time

    from web_helpers import free_port

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed; `make test` installs it (apt-get install redis-server)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                "no", "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)
