"""Helpers for the browser tests: a fake-webcam .y4m, a server on a free port, the playwright driver."""
import json
import subprocess
import threading
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "webapp" / "test" / "e2e" / "drive.mjs"
ARTIFACTS = REPO / "test-artifacts"


def write_y4m(path: Path, image: np.ndarray, frames: int = 5) -> Path:
    """A YUV 4:2:0 video of one still image, the format Chromium's fake camera reads."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    ycbcr = Image.fromarray(np.ascontiguousarray(image[:h, :w])).convert("YCbCr")
    y, cb, cr = (np.asarray(c) for c in ycbcr.split())
    half = lambda c: np.asarray(Image.fromarray(c).resize((w // 2, h // 2), Image.BILINEAR))  # noqa: E731
    frame = y.tobytes() + half(cb).tobytes() + half(cr).tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F5:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + frame)
    return path


class RunningServer:
    """`webdet serve` in a thread on 127.0.0.1 and a free port."""

    def __init__(self, export_dir, **kwargs):
        from webdet.serve import make_server

        self.server = make_server(export_dir, "127.0.0.1", 0, **kwargs)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def drive(job: dict, timeout: int = 900) -> dict:
    """Run one browser scenario; returns what the page showed."""
    ARTIFACTS.mkdir(exist_ok=True)
    result = subprocess.run(["node", str(DRIVER), json.dumps(job)], cwd=REPO / "webapp", capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
