"""`webdet serve` and `webdet build-webapp`: what is served, with which headers, and what is not."""
import http.client
import json
import os

import pytest

from web_helpers import RunningServer
from webdet.cli import main
from webdet.serve import resolve_inside


def request(url, path, method="GET", body=None):
    host = url.split("//")[1].rstrip("/")
    conn = http.client.HTTPConnection(host, timeout=60)
    conn.request(method, path, body=body)  # the path goes out as written: no client-side normalising
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


@pytest.fixture(scope="module")
def server(exported_dir):
    with RunningServer(exported_dir) as running:
        yield running


def test_app_and_model_are_served_with_the_right_types_and_headers(server):
    status, headers, body = request(server.url, "/")
    assert status == 200 and b"webdet" in body and headers["Content-Type"].startswith("text/html")
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    status, headers, _ = request(server.url, "/tfjs-backend-wasm.wasm")
    assert status == 200 and headers["Content-Type"] == "application/wasm"
    status, headers, body = request(server.url, "/model/metadata.json")
    assert status == 200 and json.loads(body)["format"] == "webdet-web-model"
    status, headers, _ = request(server.url, "/model/group1-shard1of1.bin")
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    assert "immutable" in headers["Cache-Control"]


@pytest.mark.parametrize("path", ["/../../etc/passwd", "/model/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                                  "/model/%2e%2e%2f%2e%2e%2fsaved_model/saved_model.pb", "//etc/passwd",
                                  "/model/..%5c..%5cetc%5cpasswd"])
def test_nothing_outside_the_roots_is_served(server, path):
    status, _, body = request(server.url, path)
    assert status == 404 and b"root:" not in body


def test_symlink_out_of_the_root_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    assert resolve_inside(root, "link.txt") is None
    (root / "ok.txt").write_text("ok")
    assert resolve_inside(root, "sub/../ok.txt") == (root / "ok.txt").resolve()


def test_detection_api_matches_the_exported_model(server, exported_dir, synth_dir):
    import numpy as np
    from PIL import Image

    from export.detector import load_detector

    image = sorted((synth_dir / "images").glob("*.jpg"))[3]
    status, headers, body = request(server.url, "/api/detect", "POST", image.read_bytes())
    assert status == 200
    answer = json.loads(body)
    expected = load_detector(exported_dir).detect(np.asarray(Image.open(image).convert("RGB")))
    assert [d["label"] for d in answer["detections"]] == [d["label"] for d in expected]
    status, _, body = request(server.url, "/api/detect", "POST", b"not an image")
    assert status == 400 and "not an image" in json.loads(body)["error"]


def test_api_without_a_saved_model_answers_503(exported_dir, tmp_path):
    import shutil

    web_only = tmp_path / "web_only"
    shutil.copytree(exported_dir / "web_model", web_only / "web_model")
    with RunningServer(web_only) as running:
        status, _, body = request(running.url, "/api/detect", "POST", b"x")
    assert status == 503 and "SavedModel" in json.loads(body)["error"]


def test_serve_without_an_export_is_one_line(tmp_path, capsys):
    assert main(["serve", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no web_model/model.json" in err and err.count("\n") == 1


def test_build_webapp_writes_a_static_site(exported_dir, tmp_path, capsys):
    assert main(["build-webapp", str(exported_dir), "--out", str(tmp_path / "site")]) == 0
    site = tmp_path / "site"
    for name in ("index.html", "main.js", "tfjs-backend-wasm.wasm", "model/model.json", "model/metadata.json"):
        assert (site / name).is_file(), name
    assert "static host" in capsys.readouterr().out
