"""`webdet serve`: the detection API, its limits and its answers to hostile requests, against a real
uvicorn process; the app's static files and headers; `webdet build-webapp`."""
import http.client
import io
import json
import socket
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from web_helpers import ServiceProcess
from webdet.cli import main

FRONT_END = "http://front.example:8080"
UPLOAD_MB = 2
MAX_MPX = 4
RESULT_TTL = 6


def request(url, path, method="GET", body=None, headers=None):
    host = url.split("//")[1].rstrip("/")
    conn = http.client.HTTPConnection(host, timeout=120)
    conn.request(method, path, body=body, headers=headers or {})  # the path goes out as written
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def raw_exchange(port: int, payload: bytes, timeout: float = 30) -> bytes:
    """Bytes in, whatever the server answers before closing (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and b'"}' in chunks[-1]:
                    break
        except socket.timeout:
            pass
    return b"".join(chunks)


def json_error(status_and_body, status: int) -> str:
    got, headers, body = status_and_body
    assert got == status, body[:300]
    assert headers["content-type"].startswith("application/json"), headers
    return json.loads(body)["error"]


def multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    boundary = "webdet-test-boundary"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data, ctype) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def jpeg_bytes(pixels: np.ndarray, orientation: int | None = None) -> bytes:
    out = io.BytesIO()
    image = Image.fromarray(pixels)
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.save(out, "JPEG", quality=95, exif=exif)
    else:
        image.save(out, "JPEG", quality=95)
    return out.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A real decompression bomb: a valid PNG of `width`x`height` black pixels, a few hundred KB."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor, row, body = zlib.compressobj(9), b"\x00" * (1 + width * 3), []
    for _ in range(height):
        body.append(compressor.compress(row))
    body.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(body)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def service(exported_dir):
    with ServiceProcess(exported_dir, "--max-upload-mb", str(UPLOAD_MB), "--max-pixels", str(MAX_MPX),
                        "--result-ttl", str(RESULT_TTL), "--cors-origin", FRONT_END) as running:
        yield running
    log = running.log_text()
    assert "Traceback" not in log, log[-4000:]


@pytest.fixture(scope="module")
def detector(exported_dir):
    from webdet.export.detector import load_detector

    return load_detector(exported_dir)


def scene_with_detections(synth_dir, detector) -> dict:
    """The first synthetic scene on which the model finds something (and more at a low threshold)."""
    for path in sorted((synth_dir / "images").glob("*.jpg")):
        pixels = np.asarray(Image.open(path).convert("RGB"))
        if detector.detect(pixels) and len(detector.detect(pixels, 0.01)) >= 2:
            return {"bytes": path.read_bytes(), "pixels": pixels, "name": path.name}
    pytest.fail("the exported model detects nothing on the synthetic images")


@pytest.fixture(scope="module")
def photo(synth_dir, detector):
    return scene_with_detections(synth_dir, detector)


def assert_same_detections(got: list[dict], expected: list[dict]):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert set(g) == {"box", "score", "label_id", "label"}
        assert (g["label_id"], g["label"]) == (e["label_id"], e["label"])
        assert g["box"] == pytest.approx(e["box"], abs=0.5) and g["score"] == pytest.approx(e["score"], abs=1e-4)


def test_status_reports_the_model_once_ready(service, exported_dir):
    status, headers, body = request(service.url, "/api/status")
    answer = json.loads(body)
    metadata = json.loads((exported_dir / "web_model" / "metadata.json").read_text())
    assert status == 200 and answer["status"] == "ok" and answer["ready"] is True
    assert answer["model"]["labels"] == metadata["labels"] and answer["model"]["name"] == metadata["name"]
    assert answer["model"]["version"] == metadata["version"]
    assert answer["model"]["input_size"] == metadata["input"]["shape"][1:3]
    report = json.loads((exported_dir / "export_report.json").read_text())
    assert answer["model"]["AP"] == round(report["evaluation"]["saved_model"]["AP"], 4)
    assert answer["version"] and answer["queue"]["backend"] == "memory"


def test_status_is_503_until_the_model_is_loaded(exported_dir):
    with ServiceProcess(exported_dir, wait_ready=False) as starting:
        seen, refused = [], []
        deadline = time.time() + 300
        while time.time() < deadline and (not seen or seen[-1][0] != 200):
            try:
                status, _, body = request(starting.url, "/api/status")
            except OSError:
                time.sleep(0.05)
                continue
            seen.append((status, json.loads(body)))
            if status == 503:
                status_app, _, _ = request(starting.url, "/")
                assert status_app == 200, "the app is served while the model loads"
                detect = request(starting.url, "/api/detect", "POST", b"x")
                refused.append(detect[0] == 503 and "loading" in json.loads(detect[2])["error"])
            time.sleep(0.05)
    assert any(refused), "a detection sent while the model loads is told so"
    assert seen[0][0] == 503 and seen[0][1]["ready"] is False and seen[0][1]["status"] == "loading"
    assert seen[-1][0] == 200 and seen[-1][1]["ready"] is True


def test_raw_and_multipart_uploads_match_the_exported_model(service, detector, photo):
    expected = detector.detect(photo["pixels"])
    assert expected, "the fixture image should have detections"
    status, _, body = request(service.url, "/api/detect", "POST", photo["bytes"], {"Content-Type": "image/jpeg"})
    answer = json.loads(body)
    assert status == 200 and (answer["width"], answer["height"]) == photo["pixels"].shape[1::-1]
    assert_same_detections(answer["detections"], expected)
    form, ctype = multipart({}, {"file": (photo["name"], photo["bytes"], "image/jpeg")})
    status, _, body = request(service.url, "/api/detect", "POST", form, {"Content-Type": ctype})
    assert status == 200
    assert_same_detections(json.loads(body)["detections"], expected)


def test_thresholds_and_max_detections_are_applied(service, detector, photo):
    everything = detector.detect(photo["pixels"], 0.01)
    assert len(everything) >= 2
    status, _, body = request(service.url, "/api/detect?score_threshold=0.01&max_detections=1", "POST", photo["bytes"])
    assert status == 200 and len(json.loads(body)["detections"]) == 1
    status, _, body = request(service.url, "/api/detect?score_threshold=0.01", "POST", photo["bytes"])
    assert_same_detections(json.loads(body)["detections"], everything)


def test_orientation_from_exif_from_the_form_and_from_the_query(service, detector, photo):
    """Orientation 6 means the viewer turns the stored pixels 90° clockwise: boxes follow the upright image."""
    upright = np.ascontiguousarray(np.rot90(photo["pixels"], k=-1))
    stored = jpeg_bytes(photo["pixels"], orientation=6)
    answer = json.loads(request(service.url, "/api/detect", "POST", stored)[2])
    assert (answer["width"], answer["height"]) == (upright.shape[1], upright.shape[0])
    # The reference is the stored file as a viewer shows it: decoded, then turned. Re-encoding the turned pixels
    # instead would move JPEG's 8x8 blocks and the scores with them, and near-equal scores could swap places.
    shown = np.ascontiguousarray(np.rot90(np.asarray(Image.open(io.BytesIO(stored)).convert("RGB")), k=-1))
    assert shown.shape == upright.shape
    assert_same_detections(answer["detections"], detector.detect(shown))
    plain = jpeg_bytes(photo["pixels"])
    form, ctype = multipart({"orientation": "6"}, {"file": ("p.jpg", plain, "image/jpeg")})
    by_form = json.loads(request(service.url, "/api/detect", "POST", form, {"Content-Type": ctype})[2])
    by_query = json.loads(request(service.url, "/api/detect?orientation=6", "POST", plain)[2])
    assert (by_form["width"], by_form["height"]) == (by_query["width"], by_query["height"]) == (answer["width"], answer["height"])
    kept = json.loads(request(service.url, "/api/detect?orientation=1", "POST", stored)[2])
    assert (kept["width"], kept["height"]) == photo["pixels"].shape[1::-1], "an explicit orientation wins over EXIF"


def test_format_image_returns_a_download_with_the_boxes_drawn(service, photo):
    form, ctype = multipart({}, {"file": ("kangaroo photo.jpg", photo["bytes"], "image/jpeg")})
    status, headers, body = request(service.url, "/api/detect?format=image", "POST", form, {"Content-Type": ctype})
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert headers["content-disposition"] == 'attachment; filename="kangaroo_photo-detections.jpg"'
    drawn = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"), np.int16)
    assert drawn.shape == photo["pixels"].shape
    assert np.abs(drawn - photo["pixels"]).max() > 100, "boxes are drawn on the image"
    png = io.BytesIO()
    Image.fromarray(photo["pixels"]).save(png, "PNG")
    status, headers, body = request(service.url, "/api/detect?format=image", "POST", png.getvalue())
    assert status == 200 and headers["content-type"] == "image/png" and body.startswith(b"\x89PNG")


@pytest.mark.parametrize("query, named", [
    ("score_threshold=abc", "score_threshold"), ("score_threshold=nan", "score_threshold"),
    ("score_threshold=-5", "score_threshold"), ("score_threshold=1.5", "score_threshold"),
    ("score_threshold=inf", "score_threshold"), ("max_detections=0", "max_detections"),
    ("max_detections=100000", "max_detections"), ("max_detections=2.5", "max_detections"),
    ("orientation=9", "orientation"), ("orientation=x", "orientation"), ("format=xml", "format"),
])
def test_bad_parameters_are_422_naming_the_parameter(service, photo, query, named):
    assert named in json_error(request(service.url, f"/api/detect?{query}", "POST", photo["bytes"]), 422)


def test_bad_form_fields_are_named(service, photo):
    form, ctype = multipart({"orientation": "12"}, {"file": ("p.jpg", photo["bytes"], "image/jpeg")})
    assert "orientation" in json_error(request(service.url, "/api/detect", "POST", form, {"Content-Type": ctype}), 422)
    form, ctype = multipart({}, {"image": ("p.jpg", photo["bytes"], "image/jpeg")})
    assert "'file'" in json_error(request(service.url, "/api/detect", "POST", form, {"Content-Type": ctype}), 422)
    broken = request(service.url, "/api/detect", "POST", b"--x\r\nnonsense", {"Content-Type": "multipart/form-data"})
    assert broken[0] in (400, 422) and "error" in json.loads(broken[2])


def test_not_an_image_empty_and_corrupt_bodies(service, photo):
    assert "not an image" in json_error(request(service.url, "/api/detect", "POST", b"%PDF-1.4 hello"), 415)
    assert "empty" in json_error(request(service.url, "/api/detect", "POST", b""), 400)
    truncated = photo["bytes"][: len(photo["bytes"]) // 3]
    assert "cannot be decoded" in json_error(request(service.url, "/api/detect", "POST", truncated), 400)


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(service):
    bomb = bomb_png(12000, 12000)
    assert len(bomb) < UPLOAD_MB * 1024 * 1024, "the bomb fits under the upload limit"
    started = time.perf_counter()
    message = json_error(request(service.url, "/api/detect", "POST", bomb), 413)
    assert "144.0 Mpx" in message and "--max-pixels" in message
    smaller = bomb_png(2500, 2000)
    assert "2500x2000 = 5.0 Mpx" in json_error(request(service.url, "/api/detect", "POST", smaller), 413)
    assert "--max-pixels" in json_error(request(service.url, "/api/jobs", "POST", bomb), 413)
    assert time.perf_counter() - started < 20  # decoding 144 Mpx would take far longer than refusing it


def test_a_body_over_the_upload_limit_is_refused_before_it_is_read(service):
    limit = UPLOAD_MB * 1024 * 1024
    answer = raw_exchange(service.port, f"POST /api/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                                        f"Content-Length: {limit * 50}\r\n\r\n".encode() + b"\xff\xd8" * 100)
    assert answer.startswith(b"HTTP/1.1 413") and b"--max-upload-mb" in answer

    def chunks():
        for _ in range(UPLOAD_MB * 4):
            yield b"\0" * (512 * 1024)

    conn = http.client.HTTPConnection(f"127.0.0.1:{service.port}", timeout=60)
    try:
        conn.request("POST", "/api/detect", body=chunks(), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        response = conn.getresponse()
        assert response.status == 413 and "--max-upload-mb" in json.loads(response.read())["error"]
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused mid-stream: the server closed the connection once the limit was passed
    finally:
        conn.close()
    assert request(service.url, "/api/status")[0] == 200


@pytest.mark.parametrize("payload", [
    b"POST /api/detect HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n",
    b"NONSENSE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n",
])
def test_malformed_http_gets_a_json_400(service, payload):
    answer = raw_exchange(service.port, payload)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head.lower()
    assert "malformed" in json.loads(body)["error"]
    assert request(service.url, "/api/status")[0] == 200


@pytest.mark.parametrize("path", ["/model/%00", "/%00", "/../../etc/passwd", "/model/../../etc/passwd",
                                  "/%2e%2e/%2e%2e/etc/passwd", "/model/%2e%2e%2f%2e%2e%2fsaved_model/saved_model.pb",
                                  "//etc/passwd", "/model/..%5c..%5cetc%5cpasswd", "/api/nothing-here"])
def test_nothing_outside_the_roots_is_served_and_misses_are_json(service, path):
    status, headers, body = request(service.url, path)
    assert status == 404 and b"root:" not in body and "error" in json.loads(body)


def test_wrong_method_is_405_json(service):
    status, headers, body = request(service.url, "/api/detect")
    assert status == 405 and headers["allow"] == "POST" and "GET" in json.loads(body)["error"]


def test_cors_preflight_and_answers_for_the_allowed_origin_only(service, photo):
    preflight = {"Origin": FRONT_END, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    status, headers, _ = request(service.url, "/api/detect", "OPTIONS", headers=preflight)
    assert status == 200 and headers["access-control-allow-origin"] == FRONT_END
    assert "POST" in headers["access-control-allow-methods"]
    status, headers, _ = request(service.url, "/api/detect", "POST", photo["bytes"], {"Origin": FRONT_END})
    assert status == 200 and headers["access-control-allow-origin"] == FRONT_END
    assert headers["cross-origin-resource-policy"] == "cross-origin"
    status, headers, _ = request(service.url, "/api/status", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in headers


def test_app_and_model_are_served_with_types_caching_and_isolation(service):
    status, headers, body = request(service.url, "/")
    assert status == 200 and b"webdet" in body and headers["content-type"].startswith("text/html")
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cross-origin-embedder-policy"] == "require-corp"
    status, headers, _ = request(service.url, "/tfjs-backend-wasm.wasm")
    assert status == 200 and headers["content-type"] == "application/wasm" and "immutable" in headers["cache-control"]
    status, headers, body = request(service.url, "/model/metadata.json")
    assert status == 200 and json.loads(body)["format"] == "webdet-web-model"
    status, headers, shard = request(service.url, "/model/group1-shard1of1.bin")
    assert status == 200 and "immutable" in headers["cache-control"]
    status, _, _ = request(service.url, "/model/group1-shard1of1.bin", headers={"If-None-Match": headers["etag"]})
    assert status == 304
    status, headers, part = request(service.url, "/model/group1-shard1of1.bin", headers={"Range": "bytes=10-19"})
    assert status == 206 and part == shard[10:20]


def test_openapi_docs_describe_the_api(service):
    status, _, body = request(service.url, "/openapi.json")
    paths = json.loads(body)["paths"]
    assert {"/api/status", "/api/detect", "/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/result",
            "/api/jobs/{job_id}/image"} <= set(paths)
    assert "multipart/form-data" in paths["/api/detect"]["post"]["requestBody"]["content"]
    status, headers, body = request(service.url, "/docs")
    assert status == 200 and b"swagger" in body.lower()


def poll_job(url, job_id, until=("finished", "failed"), timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, _, body = request(url, f"/api/jobs/{job_id}")
        assert status == 200, body
        state = json.loads(body)
        if state["status"] in until:
            return state
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {state['status']} after {timeout} s")


def test_in_process_job_round_trip_then_expiry(service, detector, photo):
    form, ctype = multipart({}, {"file": ("scene.jpg", photo["bytes"], "image/jpeg")})
    status, headers, body = request(service.url, "/api/jobs", "POST", form, {"Content-Type": ctype})
    submitted = json.loads(body)
    assert status == 202 and submitted["status_url"] == f"/api/jobs/{submitted['id']}" == headers["location"]
    state = poll_job(service.url, submitted["id"])
    assert state["status"] == "finished", state
    status, _, body = request(service.url, state["result_url"])
    assert status == 200
    assert_same_detections(json.loads(body)["detections"], detector.detect(photo["pixels"]))
    status, headers, body = request(service.url, state["image_url"])
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert headers["content-disposition"] == 'attachment; filename="scene-detections.jpg"'
    assert Image.open(io.BytesIO(body)).size == photo["pixels"].shape[1::-1]
    time.sleep(RESULT_TTL + 1)
    for path in (state["status_url"] if "status_url" in state else f"/api/jobs/{submitted['id']}",
                 state["result_url"], state["image_url"]):
        assert "expired" in json_error(request(service.url, path), 404)


def test_a_job_on_a_corrupt_image_fails_with_its_message(service, photo):
    truncated = photo["bytes"][: len(photo["bytes"]) // 3]
    status, _, body = request(service.url, "/api/jobs", "POST", truncated)
    assert status == 202
    job_id = json.loads(body)["id"]
    state = poll_job(service.url, job_id)
    assert state["status"] == "failed" and "cannot be decoded" in state["error"]
    assert "failed" in json_error(request(service.url, f"/api/jobs/{job_id}/result"), 409)


def test_unknown_jobs_are_404(service):
    for path in ("/api/jobs/0123456789abcdef0123456789abcdef", "/api/jobs/..%2f..", "/api/jobs/x/result",
                 "/api/jobs/x/image"):
        assert "error" in json.loads(request(service.url, path)[2]) and request(service.url, path)[0] == 404


def test_concurrent_requests_and_abandoned_connections_leave_it_serving(service, photo):
    results = []

    def one():
        results.append(request(service.url, "/api/detect", "POST", photo["bytes"])[0])

    threads = [threading.Thread(target=one) for _ in range(16)]
    for t in threads:
        t.start()
    half_open = []
    for i in range(50):  # clients that vanish mid-headers or mid-body
        sock = socket.create_connection(("127.0.0.1", service.port))
        sock.sendall(b"POST /api/detect HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + photo["bytes"][:500]
                     if i % 2 else b"GET /api/status HTTP/1.1\r\nHost: x\r\n")
        half_open.append(sock)
    assert request(service.url, "/api/status")[0] == 200, "a normal request gets through beside them"
    for sock in half_open:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, as a dropped client
        sock.close()
    for t in threads:
        t.join()
    assert results == [200] * 16
    assert request(service.url, "/api/status")[0] == 200


def test_console_has_one_access_line_per_request_and_no_traceback(service):
    marker = f"/api/status?probe={time.time_ns()}"
    request(service.url, marker)
    time.sleep(0.5)
    log = service.log_text()
    assert log.count(marker) == 1 and "Traceback" not in log


def test_serve_refuses_bad_flags_in_one_line(exported_dir, tmp_path, capsys):
    cases = [(["serve", str(tmp_path)], "no web_model/model.json"),
             (["serve", str(exported_dir), "--max-upload-mb", "nan"], "--max-upload-mb"),
             (["serve", str(exported_dir), "--workers", "2"], "--queue redis://"),
             (["serve", str(exported_dir), "--cors-origin", "front.example/path"], "--cors-origin"),
             (["serve", str(exported_dir), "--queue", "redis://127.0.0.1:9/0"], "cannot reach Redis"),
             (["worker", str(tmp_path), "--queue", "redis://127.0.0.1:9/0"], "not an export folder")]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_build_webapp_writes_a_static_site(exported_dir, tmp_path, capsys):
    assert main(["build-webapp", str(exported_dir), "--out", str(tmp_path / "site")]) == 0
    site = tmp_path / "site"
    for name in ("index.html", "main.js", "tfjs-backend-wasm.wasm", "model/model.json", "model/metadata.json"):
        assert (site / name).is_file(), name
    assert "static host" in capsys.readouterr().out
