"""`webdet build-webapp` on a plain static host (`python -m http.server`, no special headers) in headless
Chromium: the service worker makes the page cross-origin isolated, so the wasm backend runs on threads; the
app and the model are cached for offline use, the model per metadata.json `version`; a new export replaces
the cached model; without a service worker the app still runs on one thread."""
import hashlib
import json
import os
import shutil
import urllib.error
import urllib.request

import pytest
from web_helpers import RunningServer, StaticSite, best_scene, drive, drive_with_handshakes
from webdet.contract import box_iou
from webdet.export.metadata import web_model_version
from webdet.site import build_site

SHELL = ["index.html", "main.js", "app.css", "manifest.webmanifest", "icon.svg", "icon-192.png", "icon-512.png",
         "tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm-threaded-simd.wasm"]
MULTICORE = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="wasm threads need more than one core")


@pytest.fixture(scope="module")
def scene(exported_dir, prepared_dir, tmp_path_factory):
    return best_scene(exported_dir, prepared_dir, tmp_path_factory.mktemp("static-scene"))


@pytest.fixture(scope="module")
def site_dir(exported_dir, tmp_path_factory):
    return build_site(exported_dir, tmp_path_factory.mktemp("static") / "site")


def digest_version(model_dir) -> str:
    """docs/metadata.md's `version`, computed here independently of the code under test."""
    topology = (model_dir / "model.json").read_bytes()
    digest = hashlib.sha256(topology)
    for group in json.loads(topology)["weightsManifest"]:
        for shard in group["paths"]:
            digest.update((model_dir / shard).read_bytes())
    return digest.hexdigest()[:16]


def assert_right(detections, scene):
    """The boxes the Python detector finds, on the right objects."""
    assert len(detections) == len(scene["python"]), (detections, scene["python"])
    for d in detections:
        assert any(n == d["label"] and box_iou(d["box"], g) > 0.5 for n, g in scene["gt"]), d
    for p in scene["python"]:
        twin = max(detections, key=lambda b: box_iou(b["box"], p["box"]))
        assert twin["label"] == p["label"] and box_iou(twin["box"], p["box"]) > 0.9 and abs(twin["score"] - p["score"]) < 0.05


def model_caches(visit) -> dict:
    return {name: paths for name, paths in visit["caches"].items() if name.startswith("webdet-model-")}


def shell_caches(visit) -> dict:
    return {name: paths for name, paths in visit["caches"].items() if name.startswith("webdet-shell-")}


def test_site_carries_the_worker_the_manifest_and_a_model_version(exported_dir, site_dir, tmp_path):
    worker = (site_dir / "sw.js").read_text()
    assert "__WEBDET_BUILD__" not in worker
    build = worker.split("const BUILD = ", 1)[1].split(";", 1)[0].strip("\"'")
    assert len(build) == 16 and int(build, 16) >= 0
    listed = json.loads(worker.split("const SHELL = ", 1)[1].split(";", 1)[0])
    assert sorted(listed) == sorted(SHELL) and all((site_dir / name).is_file() for name in listed)
    manifest = json.loads((site_dir / "manifest.webmanifest").read_text())
    assert manifest["start_url"] == "." and manifest["display"] == "standalone" and manifest["theme_color"]
    assert {"192x192", "512x512"} <= {icon["sizes"] for icon in manifest["icons"]}
    assert all((site_dir / icon["src"]).is_file() for icon in manifest["icons"])
    page = (site_dir / "index.html").read_text()
    assert 'rel="manifest" href="./manifest.webmanifest"' in page and 'name="theme-color"' in page

    model = site_dir / "model"
    assert json.loads((model / "metadata.json").read_text())["version"] == digest_version(model) == web_model_version(model)

    # An export written before metadata.json had `version`: the site's copy gets it; the export keeps its own.
    old = tmp_path / "old_export"
    shutil.copytree(site_dir / "model", old)
    metadata = json.loads((old / "metadata.json").read_text())
    del metadata["version"]
    (old / "metadata.json").write_text(json.dumps(metadata, indent=2))
    copy = build_site(old, tmp_path / "old_site")
    assert json.loads((copy / "model" / "metadata.json").read_text()) == {**metadata, "version": digest_version(old)}
    assert "version" not in json.loads((old / "metadata.json").read_text())
    # A version already there is kept as it is.
    (old / "metadata.json").write_text(json.dumps({**metadata, "version": "given"}))
    assert json.loads((build_site(old, tmp_path / "given_site") / "model" / "metadata.json").read_text())["version"] == "given"


@MULTICORE
def test_plain_static_host_becomes_isolated_and_wasm_runs_on_threads(site_dir, scene):
    with StaticSite(site_dir) as site:
        with urllib.request.urlopen(site.url) as response:
            assert response.headers["Cross-Origin-Opener-Policy"] is None, "the host itself sends no isolation headers"
        result = drive({"url": site.url + "?backend=wasm", "scenario": "upload", "image": str(scene["png"])})
    assert "failure" not in result, result
    state = result["state"]
    assert result["crossOriginIsolated"] is True and state["serviceWorker"] == "isolated"
    assert result["loads"] == 2, "exactly one reload, to come under the service worker"
    assert state["backend"] == "wasm" and state["threads"] > 1, state
    assert result["backendText"] == f"using wasm · {state['threads']} threads"
    assert state["error"] is None
    assert_right(state["detections"], scene)
    assert not result["consoleErrors"], result["consoleErrors"]


def test_threads_parameter_sets_the_count_or_says_what_is_wrong(site_dir):
    with StaticSite(site_dir) as site:
        one = drive({"url": site.url + "?backend=wasm&threads=1", "scenario": "load"})
        bad = drive({"url": site.url + "?backend=wasm&threads=0", "scenario": "load"})
    assert "failure" not in one, one
    assert one["crossOriginIsolated"] and one["state"]["ready"] and one["state"]["threads"] == 1
    assert one["backendText"] == "using wasm · 1 thread"
    assert bad["errorVisible"] and "?threads=0 is not a positive whole number" in bad["errorText"], bad["errorText"]
    assert bad["loads"] == 2, "the message shows on the isolated page, after the one reload"
    assert not one["consoleErrors"] and not bad["consoleErrors"]


@MULTICORE
def test_second_visit_works_with_the_network_gone(site_dir, scene):
    site = StaticSite(site_dir).__enter__()

    def stop_the_host(_):
        site.__exit__()
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(site.url, timeout=5)

    try:
        result = drive_with_handshakes({"scenario": "visits", "persistent": True, "visits": [
            {"url": site.url + "?backend=wasm", "offlineReady": True},
            {"handshake": True, "offline": True, "image": str(scene["png"])}]}, stop_the_host)
    finally:
        if site.process.poll() is None:
            site.__exit__()
    assert "failure" not in result, result
    online, offline = result["visits"]
    assert online["crossOriginIsolated"] and online["navigations"] == 2 and online["state"]["offlineReady"]
    (shell,) = shell_caches(online).values()
    assert sorted(shell) == sorted(f"/{name}" for name in SHELL)
    (model,) = model_caches(online).values()
    assert {"/model/model.json", "/model/metadata.json", "/model/group1-shard1of1.bin"} <= set(model), model

    state = offline["state"]
    assert offline["navigations"] == 1 and offline["crossOriginIsolated"], "offline, the worker still isolates the page"
    assert state["ready"] and state["error"] is None and state["backend"] == "wasm" and state["threads"] > 1
    assert_right(state["detections"], scene)
    assert not result["consoleErrors"], result["consoleErrors"]


def test_a_new_export_version_replaces_the_cached_model(exported_dir, scene, tmp_path):
    site_dir = build_site(exported_dir, tmp_path / "site")
    model = site_dir / "model"
    old_version = json.loads((model / "metadata.json").read_text())["version"]
    # The "new export": the same weights, model.json changed (as a re-export may), metadata.json re-versioned.
    new = tmp_path / "new_export"
    shutil.copytree(model, new)
    topology = json.loads((new / "model.json").read_text())
    topology["userDefinedMetadata"] = {"export": "second"}
    (new / "model.json").write_text(json.dumps(topology))
    new_version = digest_version(new)
    metadata = json.loads((new / "metadata.json").read_text())
    (new / "metadata.json").write_text(json.dumps({**metadata, "version": new_version}, indent=2))
    assert new_version != old_version

    def publish_new_export(_):
        for name in ("model.json", "metadata.json"):
            shutil.copyfile(new / name, model / name)

    with StaticSite(site_dir) as site:
        result = drive_with_handshakes({"scenario": "visits", "persistent": True, "visits": [
            {"url": site.url + "?backend=wasm", "offlineReady": old_version},
            {"handshake": True, "offlineReady": new_version, "image": str(scene["png"]),
             "cachedText": ["model/model.json", "model/metadata.json"]}]}, publish_new_export)
    assert "failure" not in result, result
    first, second = result["visits"]
    assert list(model_caches(first)) == [f"webdet-model-{old_version}"]
    assert list(model_caches(second)) == [f"webdet-model-{new_version}"], "the old version is gone"
    assert json.loads(second["cachedText"]["model/model.json"])["userDefinedMetadata"] == {"export": "second"}
    assert json.loads(second["cachedText"]["model/metadata.json"])["version"] == new_version
    assert shell_caches(first) == shell_caches(second), "the same build keeps its shell"
    assert second["state"]["offlineVersion"] == new_version and second["state"]["error"] is None
    assert_right(second["state"]["detections"], scene)
    assert not result["consoleErrors"], result["consoleErrors"]


@pytest.mark.parametrize("missing, outcome", [("sw.js", "failed"), ("icon-512.png", "not isolated")],
                         ids=["registration-fails", "install-fails"])
def test_without_a_service_worker_the_app_runs_on_one_thread(exported_dir, scene, tmp_path, missing, outcome):
    """No sw.js (registration fails with a 404), or a shell file missing (the worker fails to install)."""
    site_dir = build_site(exported_dir, tmp_path / "site")
    (site_dir / missing).unlink()
    with StaticSite(site_dir) as site:
        result = drive({"url": site.url + "?backend=wasm", "scenario": "upload", "image": str(scene["png"])})
    assert "failure" not in result, result
    state = result["state"]
    assert state["serviceWorker"].startswith(outcome) and result["loads"] == 1, (state["serviceWorker"], result["loads"])
    assert result["crossOriginIsolated"] is False and state["threads"] == 1
    assert result["backendText"] == "using wasm · 1 thread"
    assert_right(state["detections"], scene)
    assert not result["consoleErrors"], result["consoleErrors"]


@MULTICORE
def test_served_by_webdet_serve_the_page_is_isolated_without_a_reload(exported_dir):
    with RunningServer(exported_dir) as server:
        result = drive({"url": server.url + "?backend=wasm", "scenario": "load"})
    assert "failure" not in result, result
    assert result["crossOriginIsolated"] and result["loads"] == 1, "the service sends the headers: no reload"
    assert result["state"]["ready"] and result["state"]["threads"] > 1
    assert not result["consoleErrors"], result["consoleErrors"]
