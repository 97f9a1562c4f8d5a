"""Browser latency of the web model, in headless Chromium, in one run.

The app as users get it: a `webdet build-webapp` folder on a plain static server (no special headers; the
app's service worker makes it cross-origin isolated), a fake camera showing one of the run's test images.
It prints the steady ms/frame of the app's own camera loop for wasm on 1 thread and on N threads, webgl and
cpu, with the backend and thread count read from the page; time to first detection on a cold visit, from
the service worker's cache, and offline; and the ratio of wasm on N threads to a bare TF Python forward pass
of the same network at batch 1, measured in the same run.

With --conventional it also compares webdet's feed-forward export with the conventional export of the same
weights that keeps NMS in the graph (and so needs `executeAsync`), per backend, on a bare benchmark page.

    .venv/bin/python benchmarks/browser_latency/run.py --run runs/kangaroo [--frames 30] [--conventional]

Needs `webapp/node_modules` (npm ci in webapp/), the built app (webapp/dist) and /usr/bin/chromium. Prints
tables and writes `results.json` in the work folder.
"""
import argparse
import functools
import http.server
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(REPO), str(HERE), str(HERE.parent), str(REPO / "tests")]

from webdet.quiet import import_tensorflow  # noqa: E402

tf = import_tensorflow()

from conventional import conventional_facts, export_conventional  # noqa: E402
from inference_latency import median_ms, network_function  # noqa: E402
from web_helpers import write_y4m  # noqa: E402
from webdet.site import build_site  # noqa: E402
from webdet.training.detector import load_checkpoint_detector  # noqa: E402
from webdet.export.exporter import export_run, load_run_model  # noqa: E402
from webdet.export.parity import read_test_split  # noqa: E402
from webdet.training.config import read_run_config  # noqa: E402
from webdet.training.model import preprocess  # noqa: E402

WEBAPP = REPO / "webapp"
MODULES = WEBAPP / "node_modules" / "@tensorflow"
BACKENDS = ("wasm", "webgl", "cpu", "webgpu")
QUANTIZATIONS = ("none", "uint8")


class IsolatedHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the cross-origin isolation `webdet serve` uses (wasm threads need it)."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript"}

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):
        pass


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build_variants(run_dir: Path, work: Path, reuse: bool, conventional: bool = True) -> dict:
    """webdet exports (float32; with `conventional`, also uint8, float16 and the conventional NMS-in-graph
    exports in float32 and uint8)."""
    variants = {}
    for quantize in ("none", "uint8", "float16") if conventional else ("none",):
        out = work / f"webdet-{quantize}"
        if not (reuse and (out / "export_report.json").is_file()):
            export_run(run_dir, out, quantize=quantize, overwrite=True, parity=False, log=lambda *_: None)
        variants[f"webdet-{quantize}"] = {"dir": out / "web_model", "kind": "feed_forward",
                                          "bytes": folder_bytes(out / "web_model"), "saved_model": out / "saved_model"}
    if not conventional:
        return variants
    config = read_run_config(run_dir)
    model, _ = load_run_model(run_dir, config, "best")
    for quantize in QUANTIZATIONS:
        out = work / f"conventional-{quantize}"
        if reuse and (out / "model.json").is_file():
            facts = conventional_facts(out)
        else:
            facts = export_conventional(model, int(config["model"]["input_size"]), out,
                                        None if quantize == "none" else quantize)
        variants[f"conventional-{quantize}"] = {"dir": out, "kind": "execute_async", "bytes": folder_bytes(out),
                                                **facts}
    return variants


def frame_input(run_dir: Path, size: int) -> np.ndarray:
    """One of the run's test images as the model's normalised [1, S, S, 3] input."""
    config = read_run_config(run_dir)
    image = read_test_split(config["data"]["dir"])[0]["image"]
    normalised, _ = preprocess(tf.constant(image), size)
    return normalised.numpy()[np.newaxis].astype("<f4"), image


def python_latency(saved_model: Path, image: np.ndarray, frames: int) -> float:
    """Median ms per frame of the SavedModel's serving signature on this CPU (first call excluded)."""
    serve = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    frame = tf.constant(image[np.newaxis])
    serve(input_tensor=frame)
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        serve(input_tensor=frame)["num_detections"].numpy()
        times.append(1000 * (time.perf_counter() - start))
    return float(np.median(times))


def serve_folder(root: Path):
    handler = functools.partial(IsolatedHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def site(work: Path, variants: dict, frame: np.ndarray) -> Path:
    """A folder the page is served from: the page, the app's source, the TF.js builds, the models and
    the input frame (float32, already normalised)."""
    root = work / "site"
    root.mkdir(exist_ok=True)
    frame.astype("<f4").tofile(root / "input.f32")
    links = {"index.html": HERE / "page.html", "app": WEBAPP, "tfjs": MODULES / "tfjs" / "dist",
             "tfjs-wasm": MODULES / "tfjs-backend-wasm" / "dist", "tfjs-webgpu": MODULES / "tfjs-backend-webgpu" / "dist"}
    links.update({f"models/{name}": v["dir"] for name, v in variants.items()})
    (root / "models").mkdir(exist_ok=True)
    for name, target in links.items():
        link = root / name
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target)
    return root


def browser_runs(url: str, variants: dict, backends, frames: int, slow_frames: int) -> list[dict]:
    metadata = json.loads((variants["webdet-none"]["dir"] / "metadata.json").read_text())
    runs = []
    for backend in backends:
        count = frames if backend in ("wasm", "webgpu") else slow_frames
        for quantize in QUANTIZATIONS:
            for family in ("webdet", "conventional"):
                name = f"{family}-{quantize}"
                runs.append({"name": name, "kind": variants[name]["kind"], "backend": backend,
                             "modelUrl": f"{url}/models/{name}/model.json", "frames": count, "warmup": 2,
                             "metadata": metadata})
    return runs


def run_browser(url: str, runs: list[dict], work: Path, chromium: str) -> dict:
    plan = {"url": f"{url}/index.html", "webapp_dir": str(WEBAPP), "chromium": chromium, "runs": runs}
    (work / "plan.json").write_text(json.dumps(plan))
    done = subprocess.run(["node", str(HERE / "bench.mjs"), str(work / "plan.json")], capture_output=True,
                          text=True, check=False)
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"bench.mjs failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def fmt(ms) -> str:
    return f"{ms:8.1f}" if isinstance(ms, (int, float)) else f"{'n/a':>8}"


def report(browser: dict, variants: dict, python_ms: float) -> dict:
    """Print the side-by-side table; return the figures."""
    table = {}
    for r in browser["results"]:
        table.setdefault(r["requested"], {})[r["name"]] = r.get("median_ms") if "error" not in r else None
        if "error" in r:
            print(f"  {r['name']} on {r['requested']}: {r['error']}")
    print(f"\nChromium {browser['chromium']}, median ms/frame (frame = run + read back; webdet includes JS NMS)")
    print(f"{'backend':8} | {'webdet f32':>10} {'conv f32':>8} {'ratio':>6} | {'webdet u8':>10} {'conv u8':>8} {'ratio':>6}")
    figures = {}
    for backend, row in table.items():
        cells, figures[backend] = [], {}
        for q in QUANTIZATIONS:
            ours, conv = row.get(f"webdet-{q}"), row.get(f"conventional-{q}")
            ratio = conv / ours if ours and conv else None
            figures[backend][q] = {"webdet_ms": ours, "conventional_ms": conv, "speedup": ratio}
            cells.append(f"{fmt(ours):>10} {fmt(conv)} {('%6.2f' % ratio) if ratio else '   n/a'}")
        print(f"{backend:8} | {cells[0]} | {cells[1]}")
    wasm = table.get("wasm", {}).get("webdet-none")
    print(f"\nSavedModel in Python (CPU, TF {tf.__version__}): {python_ms:.1f} ms/frame; "
          f"wasm / Python = {wasm / python_ms:.2f}" if wasm else "")
    print("\nSizes:")
    for name, v in variants.items():
        extra = f"  control flow: {', '.join(v['control_flow_ops'])}" if v.get("control_flow_ops") else ""
        print(f"  {name:20} {v['bytes'] / 1e6:6.2f} MB{extra}")
    return {"chromium": browser["chromium"], "browser": figures, "python_saved_model_ms": python_ms,
            "wasm_over_python": wasm / python_ms if wasm else None,
            "sizes_bytes": {name: v["bytes"] for name, v in variants.items()}, "raw": browser["results"]}


def python_forward_ms(run_dir: Path, image: np.ndarray, frames: int) -> float:
    """Median ms of a bare TF forward pass (backbone + FPN + head) of the run's network at batch 1."""
    size = int(read_run_config(run_dir)["model"]["input_size"])
    model = load_checkpoint_detector(run_dir, "best").model
    network = network_function(model, size)
    inputs = preprocess(tf.constant(image), size)[0][tf.newaxis]
    return median_ms(lambda: network(inputs), frames)


class PlainHandler(http.server.SimpleHTTPRequestHandler):
    """What a plain static host sends: files and their types, no isolation headers."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript"}

    def log_message(self, *args):
        pass


def app_runs(backends, frames: int, slow_frames: int, threads: int) -> list[dict]:
    runs = []
    for backend in backends:
        if backend == "wasm":
            runs += [{"backend": "wasm", "threads": 1, "frames": frames},
                     {"backend": "wasm", "threads": threads or None, "frames": frames}]
        else:
            runs.append({"backend": backend, "threads": None, "frames": frames if backend == "webgpu" else slow_frames})
    return runs


def run_app(run_dir: Path, export_dir: Path, work: Path, args, image: np.ndarray) -> dict:
    """The built app on a plain static server, driven by app.mjs."""
    from PIL import Image

    site_dir = build_site(export_dir, work / "app-site")
    Image.fromarray(image).save(work / "frame.png")
    write_y4m(work / "frame.y4m", image, frames=10)
    handler = functools.partial(PlainHandler, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    plan = {"url": f"http://127.0.0.1:{server.server_address[1]}/", "webapp_dir": str(WEBAPP), "chromium": args.chromium,
            "y4m": str(work / "frame.y4m"), "image": str(work / "frame.png"), "visits": True,
            "runs": app_runs(args.backends.split(","), args.frames, args.slow_frames, args.threads)}
    (work / "app-plan.json").write_text(json.dumps(plan))
    try:
        done = subprocess.run(["node", str(HERE / "app.mjs"), str(work / "app-plan.json")], capture_output=True,
                              text=True, check=False)
    finally:
        server.shutdown()
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"app.mjs failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def report_app(app: dict, python_ms: float) -> dict:
    """Print the app's figures beside the Python forward pass; return them."""
    print(f"\nThe built app on a plain static server, Chromium {app['chromium']}, fake camera, "
          f"steady ms/frame of the app's loop (frame → preprocessing → graph → JS NMS):")
    print(f"{'asked':16} | {'backend used':12} {'threads':>7} {'isolated':>8} | {'ms/frame':>8} {'x Python':>8}")
    rows = []
    for r in app["runs"]:
        asked = f"{r['requested']['backend']} {r['requested']['threads'] or 'auto'}"
        if "error" in r:
            print(f"{asked:16} | {r['error']}")
            rows.append({**r})
            continue
        ratio = r["steady_ms"] / python_ms if r.get("steady_ms") else None
        print(f"{asked:16} | {r['backend']:12} {str(r['threads'] or '-'):>7} {str(r['isolated']):>8} | "
              f"{fmt(r['steady_ms'])} {('%8.2f' % ratio) if ratio else '     n/a'}")
        rows.append({**r, "over_python": ratio})
    print(f"Python, TF {tf.__version__}, bare forward pass of the same network at batch 1: {python_ms:.1f} ms")
    wasm = [r for r in rows if r.get("backend") == "wasm" and "error" not in r]
    best = min(wasm, key=lambda r: r["steady_ms"]) if wasm else None
    if best:
        print(f"wasm on {best['threads']} threads / Python forward = {best['over_python']:.2f}")
    print("\nTime to first detection (driver clock, navigation → first uploaded image detected):")
    for name, v in app.get("visits", {}).items():
        print(f"  {name:8} {v['first_detection_ms']:8.0f} ms  (ready after {v['ready_ms']:.0f} ms; page says "
              f"ttfd {fmt(v['page_ttfd_ms']).strip()} ms, load {fmt(v['page_load_ms']).strip()} ms; "
              f"{v['backend']} x{v['threads']}, isolated {v['isolated']})")
    return {"chromium": app["chromium"], "runs": rows, "visits": app.get("visits"), "python_forward_ms": python_ms,
            "best_wasm_over_python": best["over_python"] if best else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a training run folder (its best checkpoint is used)")
    parser.add_argument("--work", help="folder for the exports and results (default: a temporary folder)")
    parser.add_argument("--frames", type=int, default=30, help="camera frames on wasm/webgpu (default 30)")
    parser.add_argument("--slow-frames", type=int, default=6, help="camera frames on webgl/cpu (default 6)")
    parser.add_argument("--threads", type=int, default=0, help="wasm threads of the N-thread row (default: the page's own choice)")
    parser.add_argument("--backends", default="wasm,webgl,cpu", help="comma-separated TF.js backends")
    parser.add_argument("--conventional", action="store_true", help="also compare with the NMS-in-graph export")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--reuse", action="store_true", help="reuse the exports already in --work")
    args = parser.parse_args(argv)
    run_dir = Path(args.run)
    work = Path(args.work or tempfile.mkdtemp(prefix="webdet-browser-latency-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"Exporting {run_dir} into {work} ...", flush=True)
    variants = build_variants(run_dir, work, args.reuse, args.conventional)
    size = int(read_run_config(run_dir)["model"]["input_size"])
    array, image = frame_input(run_dir, size)
    python_ms = python_forward_ms(run_dir, image, max(args.frames, 20))
    figures = {"app": report_app(run_app(run_dir, work / "webdet-none", work, args, image), python_ms)}
    if args.conventional:
        saved_model_ms = python_latency(variants["webdet-none"]["saved_model"], image, max(args.frames, 10))
        server = serve_folder(site(work, variants, array))
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}"
            runs = browser_runs(url, variants, args.backends.split(","), args.frames, args.slow_frames)
            browser = run_browser(url, runs, work, args.chromium)
        finally:
            server.shutdown()
        figures["conventional"] = report(browser, variants, saved_model_ms)
    (work / "results.json").write_text(json.dumps(figures, indent=2))
    print(f"\nWrote {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
