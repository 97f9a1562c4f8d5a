"""The wheel works outside the checkout: built from setup.py, installed into a clean folder, and used
from another directory with nothing of the checkout on the path."""
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from web_helpers import ServiceProcess, run_python as python, run_webdet as webdet, synth_to_export


@pytest.fixture(scope="module")
def installed(repo_dir, tmp_path_factory):
    """The wheel installed with `pip install --target` (no dependencies: the venv has them)."""
    folder = tmp_path_factory.mktemp("wheel")
    shutil.rmtree(repo_dir / "build", ignore_errors=True)  # setuptools' build/ would carry deleted modules along
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder / "dist"),
                    str(repo_dir)], check=True, capture_output=True)
    wheel = next((folder / "dist").glob("webdet-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(folder / "site"),
                    str(wheel)], check=True, capture_output=True)
    work = folder / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(folder / "site"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return {"site": folder / "site", "work": work, "env": env, "wheel": wheel}


def test_the_wheel_holds_one_namespace_with_configs_and_the_built_app(installed):
    import zipfile

    names = zipfile.ZipFile(installed["wheel"]).namelist()
    assert {n.split("/")[0] for n in names} == {"webdet", f"{installed['wheel'].name.split('-py')[0]}.dist-info"}
    for needed in ("webdet/configs/tiny.yaml", "webdet/webapp/dist/index.html", "webdet/webapp/dist/main.js",
                   "webdet/webapp/dist/tfjs-backend-wasm.wasm", "webdet/webapp/dist/node/run_model.mjs",
                   "webdet/data_prep/prepare.py", "webdet/training/train.py", "webdet/export/exporter.py",
                   "webdet/service/app.py"):
        assert needed in names, needed
    assert not any("node_modules" in n for n in names)


def test_installed_package_loads_from_the_install_not_the_checkout(installed):
    out = python(installed, "import json, webdet, webdet.training.config as c\n"
                            "from webdet.training.config import load_config\n"
                            "names = sorted(p.stem for p in c.CONFIG_DIR.glob('*.yaml'))\n"
                            "print(json.dumps({'file': webdet.__file__, 'configs': str(c.CONFIG_DIR), 'names': names,"
                            " 'sizes': [load_config(n)['model']['input_size'] for n in names]}))")
    info = json.loads(out)
    assert info["file"].startswith(str(installed["site"])) and info["configs"].startswith(str(installed["site"]))
    assert set(info["names"]) >= {"tiny", "ssd_mobilenet_v2_320", "ssd_mobilenet_v2_256", "ssd_mobilenet_v2_320_scratch"}
    assert all(size > 0 for size in info["sizes"])
    for stage in ("data_prep", "training", "export"):
        result = subprocess.run([sys.executable, "-c", f"import {stage}"], cwd=installed["work"], env=installed["env"],
                                capture_output=True, text=True)
        assert result.returncode != 0, f"a top-level `{stage}` package would collide in a user's environment"


def test_doctor_then_prepare_train_export_and_serve_from_the_wheel(installed, tiny_run):
    """The pipeline runs from the wheel; parity, which needs a model that finds something, is proved
    from the wheel on the suite's trained tiny run (6 steps find nothing, and parity refuses nothing)."""
    doctor = webdet(installed, "doctor")
    assert "web app bundle" in doctor.stdout and "Everything webdet needs is here." in doctor.stdout
    short = synth_to_export(installed, "--no-parity")
    assert "Score threshold" in short.stdout and (installed["work"] / "exp" / "web_model" / "model.json").is_file()
    exported = webdet(installed, "export", "--run", str(tiny_run), "--out", "trained")
    assert "Parity (wasm" in exported.stdout and "passed" in exported.stdout
    report = json.loads((installed["work"] / "trained" / "export_report.json").read_text())
    assert report["parity"]["backend"] == "wasm" and report["evaluation"]["web_model"]["images"] > 0
    with ServiceProcess(installed["work"] / "trained", cwd=installed["work"], env=installed["env"]) as service:
        with urllib.request.urlopen(service.url) as page:
            assert page.status == 200 and b"webdet" in page.read()
        with urllib.request.urlopen(service.url + "api/status") as status:
            assert json.loads(status.read())["ready"] is True


def test_stages_import_only_downward(installed, repo_dir):
    """import-linter on the installed namespace (the layers are in .importlinter)."""
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--config",
                             str(repo_dir / ".importlinter"), "--no-cache"], cwd=installed["work"],
                            env=installed["env"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout
