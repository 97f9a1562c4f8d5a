"""`webdet kaggle` without credentials or without a network: one line that says which, and how to fix it.

Each case runs the real command in a fresh process with its own HOME, because the kaggle package
reads the credentials and the config folder once, when it is imported.
"""
import os
import subprocess
import sys

import pytest

KAGGLE_VARIABLES = ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR", "XDG_CONFIG_HOME")


def run_kaggle(home, dataset="someone/kangaroos", **env):
    clean = {k: v for k, v in os.environ.items() if k not in KAGGLE_VARIABLES and not k.lower().endswith("_proxy")}
    return subprocess.run([sys.executable, "-m", "webdet.cli", "kaggle", dataset, "--out", str(home / "download")],
                          capture_output=True, text=True, timeout=120, env={**clean, "HOME": str(home), **env})


def test_without_credentials_says_where_to_put_them(tmp_path):
    result = run_kaggle(tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no Kaggle credentials found" in lines[0]
    assert "~/.kaggle/kaggle.json" in lines[0] and "KAGGLE_USERNAME and KAGGLE_KEY" in lines[0]
    assert not (tmp_path / "download").exists()


def test_without_a_network_says_so(tmp_path):
    # Credentials are present; every connection goes to a closed local port, as on a machine offline.
    closed = "http://127.0.0.1:9"
    result = run_kaggle(tmp_path, KAGGLE_USERNAME="someone", KAGGLE_KEY="0123456789abcdef",
                        HTTPS_PROXY=closed, HTTP_PROXY=closed, https_proxy=closed, http_proxy=closed)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot reach kaggle.com" in lines[0] and "no network?" in lines[0]


@pytest.mark.parametrize("dataset", ["kangaroos", "a/b/c", "/kangaroos"])
def test_a_malformed_dataset_name_is_named_before_anything_else(tmp_path, dataset):
    result = run_kaggle(tmp_path, dataset=dataset)
    assert result.returncode == 2
    assert result.stderr.strip() == f"webdet kaggle: error: {dataset}: expected OWNER/DATASET, " \
                                    "e.g. hugozanini1/kangaroodataset"
