"""Python 3.12, the newest supported version: `.venv312` (built by `make test` from the same lock, the package
installed non-editable) imports every module and runs the pipeline from the command line, outside the checkout.
Skips only where there is no Python 3.12; fails where there is one but the environment was not built."""
import json
import os
from pathlib import Path

import pytest

from interpreters import find_python
from web_helpers import REPO, run_python, synth_to_export

VENV312 = REPO / ".venv312"
STAGES = ("data_prep", "training", "export")
# setup.py's packages, as folders of the installed webdet/ and of the checkout (package_dir)
PACKAGES = {"": "webdet", "service": "webdet/service", **{name: name for name in (*STAGES, "configs", "webapp")}}

IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
import webdet
names = ["webdet"] + [m.name for m in pkgutil.walk_packages(webdet.__path__, "webdet.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"version": sys.version_info[:2], "package": webdet.__path__[0], "modules": names,
                  "path": sys.path}))
"""


@pytest.fixture(scope="module")
def installed312(tmp_path_factory):
    interpreter = find_python("3.12")
    if interpreter is None:
        pytest.skip("no Python 3.12 here (neither python3.12 on PATH nor one installed by pyenv)")
    if not (VENV312 / ".webdet-installed").is_file():
        pytest.fail(f"Python 3.12 is here ({interpreter}) but .venv312 is not built: run `make python312-env` "
                    "(`make test` does)")
    work = tmp_path_factory.mktemp("py312") / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return {"python": str(VENV312 / "bin" / "python"), "work": work, "env": env}


@pytest.fixture(scope="module")
def imported(installed312):
    return json.loads(run_python(installed312, IMPORT_EVERYTHING))


def test_every_module_imports_on_python_312_from_the_installed_package(imported):
    assert tuple(imported["version"]) == (3, 12)
    package = Path(imported["package"])
    assert package.parent.name == "site-packages" and package.is_relative_to(VENV312), package
    checkout = [p for p in map(Path, filter(None, imported["path"])) if p.is_relative_to(REPO)]
    assert all(p.is_relative_to(VENV312) for p in checkout), f"the checkout is on sys.path: {checkout}"
    for module in ("webdet.cli", "webdet.service.app", *(f"webdet.{stage}" for stage in STAGES),
                   "webdet.data_prep.prepare", "webdet.training.train", "webdet.export.exporter"):
        assert module in imported["modules"], module


def test_the_installed_package_is_this_checkout(imported):
    """Non-editable means a copy: it must be the current one (`make python312-env` reinstalls on any change)."""
    package = Path(imported["package"])
    installed = {p.relative_to(package): p.read_bytes() for p in package.rglob("*.py")}
    checkout = {Path(key, p.name): p.read_bytes() for key, folder in PACKAGES.items()
                for p in (REPO / folder).glob("*.py")}
    differ = sorted(str(rel) for rel in installed.keys() | checkout.keys() if installed.get(rel) != checkout.get(rel))
    assert not differ, f"{differ}: .venv312 holds an older install; run `make python312-env`"


def test_synth_prepare_train_export_on_python_312(installed312):
    """Without the parity check: it needs a model that detects something, which six steps do not promise."""
    synth_to_export(installed312, "--no-parity")
    export = installed312["work"] / "exp"
    assert (export / "saved_model" / "saved_model.pb").is_file()
    model = json.loads((export / "web_model" / "model.json").read_text())
    assert model["format"] == "graph-model" and model["weightsManifest"]
