"""Detection service under load: `webdet serve` on 127.0.0.1 against the SavedModel called directly.

One run measures, side by side:
  direct      `load_detector(export).detect(pixels)` in a loop in this process (the baseline)
  memory      `webdet serve EXPORT`: POST /api/detect answered synchronously, and POST /api/jobs
              polled until finished, then /result fetched (in-process jobs also render the boxed image)
  redis       `webdet serve EXPORT --queue redis://…` with 2 `webdet worker` processes: jobs submitted,
              polled until finished, /result fetched
each with 8 and 32 concurrent clients (threads, one keep-alive connection each, requests back-to-back,
--requests in total per row). Per row: images/s, p50/p95/p99 latency (request start → detections
received; jobs: submit → result fetched), errors, and the ratio to the direct baseline. Then each
process's time from start to ready (server: /api/status 200; worker: its "ready on" line) and its
peak memory (VmHWM). The clients share the machine with the service, as they do on one host.
Everything started here (servers, workers, redis-server) is stopped at the end, also on error or
Ctrl-C. Exits 1 when any request failed.

    python benchmarks/serve_load.py --export export/mine
    python benchmarks/serve_load.py --export export/mine --images photos/ --requests 128
    python benchmarks/serve_load.py --export /tmp/wd/export --requests 16 --clients 8
"""
import argparse
import contextlib
import http.client
import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HOST = "127.0.0.1"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
WORKERS = 2


class RequestFailed(Exception):
    """A non-2xx answer or a malformed body; the message says which request and why."""


@dataclass
class Row:
    name: str
    clients: int
    latencies: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    seconds: float = 0.0
    polls: int = 0

    @property
    def images_per_s(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds > 0 else 0.0


# --- images ---------------------------------------------------------------------------------------

def synthetic_images(count: int, width: int, height: int, seed: int = 0) -> list[bytes]:
    """JPEGs from the synthetic generator the demo trains on."""
    from webdet.data_prep.synth import make_image

    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        out = io.BytesIO()
        make_image(rng, width, height)[0].save(out, "JPEG", quality=92)
        images.append(out.getvalue())
    return images


def folder_images(folder: Path, count: int) -> list[bytes]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:count]
    if not paths:
        raise SystemExit(f"--images {folder}: no .jpg/.jpeg/.png files")
    return [p.read_bytes() for p in paths]


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def describe_images(images: list[bytes], source: str) -> str:
    sizes = sorted({Image.open(io.BytesIO(d)).size for d in images})
    shown = ", ".join(f"{w}x{h}" for w, h in sizes[:4]) + (" …" if len(sizes) > 4 else "")
    return f"{len(images)} images ({source}), size {shown}, {sum(map(len, images)) / len(images) / 1024:.0f} KiB avg"


# --- the baseline -----------------------------------------------------------------------------------

def measure_direct(export: Path, images: list[bytes], requests: int) -> Row:
    """The SavedModel called in a loop in this process on the decoded images: the ceiling for the service."""
    from webdet.export.detector import load_detector

    detector = load_detector(export)
    pixels = [decode(d) for d in images]
    for p in pixels[:2]:
        detector.detect(p)
    row = Row("direct SavedModel", 1)
    started = time.perf_counter()
    for i in range(requests):
        t0 = time.perf_counter()
        detector.detect(pixels[i % len(pixels)])
        row.latencies.append(time.perf_counter() - t0)
    row.seconds = time.perf_counter() - started
    return row


# --- processes ------------------------------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Started:
    """A process this benchmark started, its log, how long it took to be ready and its peak memory."""

    def __init__(self, name: str, args: list, log_dir: Path, stop_signal=signal.SIGINT):
        self.name, self.args, self.stop_signal = name, [str(a) for a in args], stop_signal
        self.log_path = log_dir / f"{name.replace(' ', '-')}.log"
        self.ready_s = None
        self.peak_mib = None
        self.problems = []
        self._log = open(self.log_path, "wb")
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO,
                                        stdin=subprocess.DEVNULL)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise SystemExit(f"{self.name} exited with {self.process.returncode}:\n{self.log_text()[-3000:]}")

    def mark_ready(self) -> None:
        self.ready_s = time.perf_counter() - self.started_at

    def read_peak(self) -> None:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_mib = int(line.split()[1]) / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.read_peak()
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        self.problems = log_problems(self.log_text())


def log_problems(text: str) -> list[str]:
    """The log's warning, error and traceback lines (uvicorn's `WARNING:`/`ERROR:`, RQ's `... WARNING ...`)."""
    marks = ("Traceback", "WARNING", "ERROR", "CRITICAL")
    return [line.strip() for line in text.splitlines() if any(m in line for m in marks)]


def wait_until(ready, proc: Started, timeout: float, what: str) -> None:
    wait_all([(proc, ready)], timeout, what)


def wait_all(pending: list, timeout: float, what: str, every: float = 0.05) -> None:
    """Each (process, ready) is marked ready the first tick its check passes; any exit or the timeout stops it."""
    deadline = time.perf_counter() + timeout
    while pending:
        for proc, ready in list(pending):
            proc.check_alive()
            if ready():
                proc.mark_ready()
                pending.remove((proc, ready))
        if pending and time.perf_counter() > deadline:
            proc = pending[0][0]
            raise SystemExit(f"{proc.name}: not {what} within {timeout:.0f} s:\n{proc.log_text()[-3000:]}")
        time.sleep(every if pending else 0)


def status_is_ready(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection(HOST, port, timeout=2)
        conn.request("GET", "/api/status")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def start_server(stack, args, log_dir: Path, name: str, *extra) -> tuple[Started, int]:
    port = free_port()
    command = [sys.executable, "-m", "webdet.cli", "serve", args.export, "--host", HOST, "--port", port,
               "--threads", args.threads, "--max-queued", max(64, *args.clients), *extra]
    proc = Started(name, command, log_dir)
    stack.callback(proc.stop)
    wait_until(lambda: status_is_ready(port), proc, args.ready_timeout, "ready (GET /api/status 200)")
    return proc, port


def start_redis(stack, log_dir: Path, timeout: float) -> tuple[Started, str]:
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = Started("redis-server", [binary, "--port", port, "--bind", HOST, "--save", "", "--appendonly", "no",
                                    "--dir", log_dir], log_dir, signal.SIGTERM)
    stack.callback(proc.stop)
    client = redis.Redis(host=HOST, port=port, socket_connect_timeout=1)

    def pings() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    wait_until(pings, proc, timeout, "answering PING")
    client.close()
    return proc, f"redis://{HOST}:{port}/0"


def start_workers(stack, args, log_dir: Path, queue: str) -> list[Started]:
    """All workers start at once (they share the CPUs while loading); each is timed to its own "ready on"."""
    workers = []
    for i in range(WORKERS):
        name = f"worker {i + 1}"
        command = [sys.executable, "-m", "webdet.cli", "worker", args.export, "--queue", queue,
                   "--name", f"webdet-bench-{os.getpid()}-{i + 1}"]
        workers.append(Started(name, command, log_dir, signal.SIGTERM))
        stack.callback(workers[-1].stop)
    wait_all([(w, lambda w=w: "ready on" in w.log_text()) for w in workers], args.ready_timeout, 'ready ("ready on")')
    return workers


# --- clients --------------------------------------------------------------------------------------

class Client:
    """One keep-alive connection to the service; after a failure the next call opens a fresh one."""

    def __init__(self, port: int, timeout: float):
        self.port, self.timeout, self.conn = port, timeout, None

    def call(self, method: str, path: str, body: bytes | None = None, expect: int = 200) -> dict:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        try:
            headers = {"Content-Type": "image/jpeg"} if body is not None else {}
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except Exception:
            self.close()
            raise
        if response.status != expect:
            raise RequestFailed(f"{method} {path.split('?')[0]}: {response.status} {data[:200]!r}")
        return json.loads(data)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def detect_sync(client: Client, image: bytes, _args) -> int:
    body = client.call("POST", "/api/detect", image)
    if "detections" not in body:
        raise RequestFailed(f"POST /api/detect: no detections in {str(body)[:200]}")
    return 0


def detect_job(client: Client, image: bytes, args) -> int:
    """Submit, poll until finished (bounded by --timeout), fetch the result; returns the polls it took.
    The pause between polls grows from --poll-interval by half each time up to --poll-max."""
    submitted = client.call("POST", "/api/jobs", image, expect=202)
    deadline, pause, polls = time.perf_counter() + args.timeout, args.poll_interval, 0
    while True:
        state = client.call("GET", submitted["status_url"])
        polls += 1
        if state["status"] == "finished":
            break
        if state["status"] == "failed":
            raise RequestFailed(f"job failed: {state.get('error')}")
        if time.perf_counter() > deadline:
            raise RequestFailed(f"job still {state['status']} after {args.timeout:.0f} s")
        time.sleep(pause)
        pause = min(pause * 1.5, args.poll_max)
    body = client.call("GET", state["result_url"])
    if "detections" not in body:
        raise RequestFailed(f"GET {state['result_url']}: no detections in {str(body)[:200]}")
    return polls


def describe_error(exc: Exception) -> str:
    return str(exc) if isinstance(exc, RequestFailed) else f"{type(exc).__name__}: {exc}"


def client_loop(row: Row, port: int, images: list[bytes], one_request, args, take, lock, deadline) -> None:
    client = Client(port, args.timeout)
    try:
        while (index := take()) is not None:
            if time.perf_counter() > deadline:
                with lock:
                    row.errors.append(f"not sent: the row ran past --max-seconds {args.max_seconds:.0f}")
                continue
            started = time.perf_counter()
            try:
                polls = one_request(client, images[index % len(images)], args)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                with lock:
                    row.errors.append(describe_error(exc))
                continue
            with lock:
                row.latencies.append(time.perf_counter() - started)
                row.polls += polls
    finally:
        client.close()


def counter(limit: int, lock):
    state = {"next": 0}

    def take():
        with lock:
            if state["next"] >= limit:
                return None
            state["next"] += 1
            return state["next"] - 1

    return take


def run_load(name: str, clients: int, port: int, images: list[bytes], one_request, args) -> Row:
    """`clients` threads sending back-to-back until --requests are done, after one untimed warm-up round."""
    warm = Row(name, clients)
    run_threads(warm, min(clients, len(images)), port, images, one_request, args, min(clients, len(images)))
    row = Row(name, clients, errors=warm.errors)
    row.seconds = run_threads(row, clients, port, images, one_request, args, args.requests)
    return row


def run_threads(row: Row, clients: int, port: int, images, one_request, args, requests: int) -> float:
    lock = threading.Lock()
    take, deadline = counter(requests, lock), time.perf_counter() + args.max_seconds
    threads = [threading.Thread(target=client_loop, args=(row, port, images, one_request, args, take, lock, deadline),
                                daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


# --- configurations -------------------------------------------------------------------------------

def measure_memory(args, images, log_dir: Path) -> tuple[list[Row], list[Started]]:
    with contextlib.ExitStack() as stack:
        server, port = start_server(stack, args, log_dir, "server (memory)")
        rows = [run_load("memory /api/detect", n, port, images, detect_sync, args) for n in args.clients]
        rows += [run_load("memory /api/jobs", n, port, images, detect_job, args) for n in args.clients]
    return rows, [server]


def measure_redis(args, images, log_dir: Path) -> tuple[list[Row], list[Started]]:
    with contextlib.ExitStack() as stack:
        redis_proc, queue = start_redis(stack, log_dir, args.ready_timeout)
        server, port = start_server(stack, args, log_dir, "server (redis)", "--queue", queue)
        workers = start_workers(stack, args, log_dir, queue)
        rows = [run_load(f"redis /api/jobs {WORKERS}w", n, port, images, detect_job, args) for n in args.clients]
    return rows, [server, *workers, redis_proc]


# --- report ---------------------------------------------------------------------------------------

def percentile_ms(row: Row, q: float) -> str:
    return f"{np.percentile(row.latencies, q) * 1000:.1f}" if row.latencies else "-"


def polls_per_job(row: Row) -> str:
    return f"{row.polls / len(row.latencies):.1f}" if row.polls and row.latencies else "-"


def print_rows(rows: list[Row], baseline: Row) -> None:
    print(f"{'configuration':<22} {'clients':>7} {'ok':>5} {'images/s':>9} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8} {'errors':>6} {'vs direct':>9} {'polls/job':>9}")
    for row in [baseline, *rows]:
        ratio = row.images_per_s / baseline.images_per_s if baseline.images_per_s else 0.0
        print(f"{row.name:<22} {row.clients:>7} {len(row.latencies):>5} {row.images_per_s:>9.2f} "
              f"{percentile_ms(row, 50):>8} {percentile_ms(row, 95):>8} {percentile_ms(row, 99):>8} "
              f"{len(row.errors):>6} {ratio:>9.3f} {polls_per_job(row):>9}")


def print_processes(processes: list[Started]) -> None:
    print(f"\n{'process':<22} {'start → ready s':>15} {'peak RSS MiB':>13} {'log warnings':>12}")
    for p in processes:
        ready = f"{p.ready_s:.2f}" if p.ready_s is not None else "-"
        peak = f"{p.peak_mib:.0f}" if p.peak_mib is not None else "-"
        print(f"{p.name:<22} {ready:>15} {peak:>13} {len(p.problems):>12}")
    import resource

    print(f"{'this process (direct)':<22} {'':>15} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>13.0f}")
    for p in processes:
        for line in list(dict.fromkeys(p.problems))[:3]:
            print(f"  {p.name} log: {line[:200]}")


def print_errors(rows: list[Row]) -> int:
    failed = [row for row in rows if row.errors]
    for row in failed:
        distinct = sorted(set(row.errors), key=row.errors.index)
        print(f"\nerrors in {row.name}, {row.clients} clients ({len(row.errors)}):")
        for message in distinct[:5]:
            print(f"  {row.errors.count(message)} x {message}")
    return sum(len(row.errors) for row in failed)


def print_header(args, image_text: str) -> None:
    print("command: " + shlex.join([sys.executable, *sys.argv]))
    print(f"machine: {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f}; export {args.export}")
    print(f"images: {image_text}")
    clients = " and ".join(map(str, args.clients))
    print(f"requests per row: {args.requests} (after an untimed warm-up), clients {clients}, "
          f"server --threads {args.threads}, job polls {args.poll_interval * 1000:.0f} ms apart growing to "
          f"{args.poll_max * 1000:.0f} ms\n", flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", required=True, help="an export folder written by `webdet export`")
    parser.add_argument("--images", type=Path, help="a folder of JPEG/PNG (default: synthetic JPEGs)")
    parser.add_argument("--image-count", type=int, default=8, help="images used, in turn (default 8)")
    parser.add_argument("--image-size", default="320x240", help="WxH of the synthetic images (default 320x240)")
    parser.add_argument("--requests", type=int, default=64, help="timed requests per row (default 64)")
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32], help="concurrent clients (default 8 32)")
    parser.add_argument("--threads", type=int, default=2, help="`webdet serve --threads` (default 2)")
    parser.add_argument("--poll-interval", type=float, default=0.01, help="first pause between job polls, s "
                        "(default 0.01)")
    parser.add_argument("--poll-max", type=float, default=0.1, help="longest pause between job polls, s (default 0.1)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds one request or job may take")
    parser.add_argument("--max-seconds", type=float, default=300, help="no new requests in a row after this")
    parser.add_argument("--ready-timeout", type=float, default=300, help="seconds a process may take to be ready")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.image_count < 1 or min(args.clients) < 1:
        parser.error("--requests, --image-count and --clients must be at least 1")
    return args


def read_images(args) -> tuple[list[bytes], str]:
    if args.images:
        images = folder_images(args.images, args.image_count)
        return images, describe_images(images, str(args.images))
    width, height = (int(v) for v in args.image_size.lower().split("x"))
    images = synthetic_images(args.image_count, width, height)
    return images, describe_images(images, "synthetic JPEG, data_prep.synth.make_image")


def stop_on_signals() -> None:
    """SIGTERM, and SIGINT even where the shell started this with it ignored, unwind and stop everything."""
    def interrupt(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv=None) -> int:
    args = parse_args(argv)
    stop_on_signals()
    from webdet.quiet import import_tensorflow

    import_tensorflow()
    images, image_text = read_images(args)
    print_header(args, image_text)
    baseline = measure_direct(Path(args.export), images, args.requests)
    with tempfile.TemporaryDirectory(prefix="webdet-serve-load-") as tmp:
        memory_rows, memory_procs = measure_memory(args, images, Path(tmp))
        redis_rows, redis_procs = measure_redis(args, images, Path(tmp))
    rows = memory_rows + redis_rows
    print_rows(rows, baseline)
    print_processes(memory_procs + redis_procs)
    errors = print_errors(rows)
    print(f"\n{errors} error(s)" if errors else "\nno errors")
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        sys.exit(130)
