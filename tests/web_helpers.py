"""Helpers for the browser tests (a fake-webcam .y4m, a server on a free port, the playwright driver) and for the
tests of the installed package (the CLI run from outside the checkout)."""
import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "webapp" / "test" / "e2e" / "drive.mjs"
ARTIFACTS = REPO / "test-artifacts"


def yuv420_planes(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y at full size, Cb and Cr at half size: what a YUV 4:2:0 camera frame holds."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    ycbcr = Image.fromarray(np.ascontiguousarray(image[:h, :w])).convert("YCbCr")
    y, cb, cr = (np.asarray(c) for c in ycbcr.split())
    half = lambda c: np.asarray(Image.fromarray(c).resize((w // 2, h // 2), Image.BILINEAR))  # noqa: E731
    return y, half(cb), half(cr)


def yuv420_round_trip(image: np.ndarray) -> np.ndarray:
    """The image as the fake camera shows it: through YUV 4:2:0 and back to RGB."""
    y, cb, cr = yuv420_planes(image)
    full = lambda c: Image.fromarray(c).resize((y.shape[1], y.shape[0]), Image.BILINEAR)  # noqa: E731
    return np.asarray(Image.merge("YCbCr", (Image.fromarray(y), full(cb), full(cr))).convert("RGB"))


def write_y4m(path: Path, image: np.ndarray, frames: int = 5) -> Path:
    """A YUV 4:2:0 video of one still image, the format Chromium's fake camera reads."""
    y, cb, cr = yuv420_planes(image)
    h, w = y.shape
    frame = y.tobytes() + cb.tobytes() + cr.tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F5:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + frame)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float, accept=(200,), process=None) -> None:
    """Poll `url` until it answers one of `accept` (or the process dies, or time runs out)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status in accept:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code in accept:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"{url} did not answer {accept} within {timeout} s")


class RunningServer:
    """The service (FastAPI on uvicorn) in a thread of this process on 127.0.0.1 and a free port."""

    def __init__(self, export_dir, **settings):
        import uvicorn

        from webdet.service.app import create_app
        from webdet.service.server import JsonErrorH11Protocol
        from webdet.service.settings import ServiceSettings, check_settings

        self.settings = check_settings(ServiceSettings(str(export_dir), port=free_port(), **settings))
        self.app = create_app(self.settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.settings.port, http=JsonErrorH11Protocol,
                                log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.url = f"http://127.0.0.1:{self.settings.port}/"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        wait_for(self.url + "api/status", 300, accept=(200, 503))
        self.app.state.model.wait(300)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)


class LoggedProcess:
    """A child process whose console output goes to a log file kept for inspection."""

    stop_signal = signal.SIGTERM

    def __init__(self, args, prefix: str, cwd=REPO, env=None):
        self.args, self.cwd, self.env = args, cwd, env
        self.log = tempfile.NamedTemporaryFile(prefix=prefix, suffix=".log", delete=False)
        self.process = None

    def spawn(self):
        self.process = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.cwd,
                                        env=self.env)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_text(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class ServiceProcess(LoggedProcess):
    """`webdet serve EXPORT --port P …` as a real process, stopped with Ctrl+C as a person would."""

    stop_signal = signal.SIGINT

    def __init__(self, export_dir, *args, ready_timeout: float = 300, wait_ready: bool = True, cwd=REPO, env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        super().__init__([sys.executable, "-m", "webdet.cli", "serve", str(export_dir), "--port", str(self.port),
                          *args], "webdet-serve-", cwd, env)
        self.ready_timeout, self.wait_ready = ready_timeout, wait_ready

    def start(self):
        self.spawn()
        if self.wait_ready:
            wait_for(self.url + "api/status", self.ready_timeout, process=self.process)
        return self


class WorkerProcess(LoggedProcess):
    """`webdet worker --queue URL EXPORT` as a real process, ready once it says so."""

    def __init__(self, export_dir, queue_url: str, name: str):
        self.name = name
        super().__init__([sys.executable, "-m", "webdet.cli", "worker", str(export_dir), "--queue", queue_url,
                          "--name", name], f"{name}-")

    def start(self, timeout: float = 300):
        offset = len(self.log_text())
        self.spawn()
        deadline = time.time() + timeout
        while "ready on" not in self.log_text()[offset:]:
            if self.process.poll() is not None or time.time() > deadline:
                raise AssertionError(f"worker {self.name} did not start:\n{self.log_text()[-3000:]}")
            time.sleep(0.25)
        return self

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


class StaticSite:
    """A folder on a plain static server (`python -m http.server`), as a static host serves it."""

    def __init__(self, folder):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.args = [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                     "--directory", str(folder)]
        self.process = None

    def __enter__(self):
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.url, 30, process=self.process)
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(10)


def run_webdet(installed: dict, *args, timeout=900) -> subprocess.CompletedProcess:
    """`webdet ARGS` as a user runs it: in `installed["work"]` with `installed["env"]`, on `installed["python"]`
    (this interpreter by default)."""
    result = subprocess.run([installed.get("python", sys.executable), "-m", "webdet.cli", *args],
                            cwd=installed["work"], env=installed["env"], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"webdet {' '.join(args)}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def run_python(installed: dict, code: str) -> str:
    """`python -c CODE` in the same place as run_webdet; returns what it printed."""
    result = subprocess.run([installed.get("python", sys.executable), "-c", code], cwd=installed["work"],
                            env=installed["env"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def synth_to_export(installed: dict, *export_args) -> subprocess.CompletedProcess:
    """The whole pipeline from the command line in a minute: `webdet synth` → `prepare` → `train --config tiny` for
    6 steps → `export` (to work/exp); returns the export's result."""
    run_webdet(installed, "synth", "--out", "synth", "--images", "24")
    run_webdet(installed, "prepare", "synth", "--out", "data")
    run_webdet(installed, "train", "--data", "data", "--run", "run", "--config", "tiny", "--steps", "6",
               "--init-checkpoint", "none", "--no-progress", "--set", "train.eval_every_epochs=1000")
    return run_webdet(installed, "export", "--run", "run", "--out", "exp", "--data", "data", *export_args)


def drive(job: dict, timeout: int = 900) -> dict:
    """Run one browser scenario; returns what the page showed."""
    ARTIFACTS.mkdir(exist_ok=True)
    result = subprocess.run(["node", str(DRIVER), json.dumps(job)], cwd=REPO / "webapp", capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def best_scene(exported_dir, prepared_dir, folder: Path) -> dict:
    """The test image the exported model gets fully right with the widest margin over its score threshold (no
    wrong box, none missed), saved as `folder`/scene.png: {png, gt, python} (ground truth and the Python
    detector's records, boxes in pixels)."""
    import io

    from webdet.contract import box_iou
    from webdet.data_prep.tfrecords import data_files, iter_examples
    from webdet.export.detector import load_detector

    detector = load_detector(exported_dir)
    best = None
    for example in iter_examples(data_files(prepared_dir, "test")):
        image = np.asarray(Image.open(io.BytesIO(example["encoded"])).convert("RGB"))
        h, w = image.shape[:2]
        gt = [(n, [b[1] * w, b[0] * h, b[3] * w, b[2] * h]) for n, b in zip(example["class_names"], example["boxes"])]
        found = detector.detect(image)
        right = [d for d in found if any(n == d["label"] and box_iou(d["box"], g) > 0.5 for n, g in gt)]
        if gt and len(found) == len(gt) == len(right):
            margin = min(d["score"] for d in found)
            if best is None or margin > best[0]:
                best = (margin, image, gt, found)
    if best is None or best[0] < detector.score_threshold + 0.05:
        raise AssertionError(f"the model got no test image right with a margin (best {best and best[0]})")
    _, image, gt, found = best
    Path(folder).mkdir(parents=True, exist_ok=True)
    png = Path(folder) / "scene.png"
    Image.fromarray(image).save(png)
    return {"png": png, "gt": gt, "python": found}


def drive_with_handshakes(job: dict, on_handshake, timeout: int = 900) -> dict:
    """Run a browser scenario that stops at handshakes (the `visits` scenario's `handshake` steps): at each,
    `on_handshake(result_so_far)` runs, then the driver goes on. Returns the final result."""
    ARTIFACTS.mkdir(exist_ok=True)
    proc = subprocess.Popen(["node", str(DRIVER), json.dumps(job)], cwd=REPO / "webapp", stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = None
    try:
        for _ in range(sum(1 for step in job.get("visits", []) if step.get("handshake"))):
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"the driver stopped early: {proc.stderr.read()}")
            last = json.loads(line)
            if "failure" in last:  # the driver gave up before this handshake and has printed its result
                break
            on_handshake(last)
            proc.stdin.write("go\n")
            proc.stdin.flush()
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err
        lines = out.strip().splitlines()
        return json.loads(lines[-1]) if lines else last
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
