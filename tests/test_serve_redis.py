"""Jobs on Redis + RQ with real `webdet worker` processes: a round trip to a downloadable image, a
failed job with its reason, a worker killed mid-job, expiry, and a model loaded once per worker."""
import io
import json
import time

import numpy as np
import pytest
from PIL import Image

from test_serve import assert_same_detections, json_error, multipart, poll_job, request, scene_with_detections
from web_helpers import ServiceProcess, WorkerProcess

RESULT_TTL = 20


@pytest.fixture(scope="module")
def queue_service(exported_dir, redis_url):
    with ServiceProcess(exported_dir, "--queue", redis_url, "--retries", "1", "--result-ttl", str(RESULT_TTL)) as s:
        yield s
    assert "Traceback" not in s.log_text(), s.log_text()[-4000:]


@pytest.fixture(scope="module")
def worker(exported_dir, redis_url, queue_service):
    with WorkerProcess(exported_dir, redis_url, "webdet-test-a") as running:
        yield running


@pytest.fixture(scope="module")
def scene(synth_dir, exported_dir):
    from webdet.export.detector import load_detector

    return scene_with_detections(synth_dir, load_detector(exported_dir))


def submit(url, data, name="scene.jpg"):
    form, ctype = multipart({}, {"file": (name, data, "image/jpeg")})
    status, _, body = request(url, "/api/jobs", "POST", form, {"Content-Type": ctype})
    assert status == 202, body
    return json.loads(body)["id"]


def test_a_job_round_trips_through_redis_to_a_downloadable_image(queue_service, worker, scene, exported_dir):
    from webdet.export.detector import load_detector

    job_id = submit(queue_service.url, scene["bytes"])
    state = poll_job(queue_service.url, job_id)
    assert state["status"] == "finished", state
    result = json.loads(request(queue_service.url, state["result_url"])[2])
    assert_same_detections(result["detections"], load_detector(exported_dir).detect(scene["pixels"]))
    status, headers, body = request(queue_service.url, state["image_url"])
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert headers["content-disposition"] == 'attachment; filename="scene-detections.jpg"'
    assert Image.open(io.BytesIO(body)).size == scene["pixels"].shape[1::-1]
    status_body = json.loads(request(queue_service.url, "/api/status")[2])
    assert status_body["queue"]["backend"] == "redis" and status_body["queue"]["workers"] >= 1


def test_the_model_is_loaded_once_per_worker_not_per_job(queue_service, worker, scene):
    ids = [submit(queue_service.url, scene["bytes"]) for _ in range(3)]
    assert all(poll_job(queue_service.url, i)["status"] == "finished" for i in ids)
    assert worker.log_text().count("loading the model") == 1


def test_a_job_on_a_corrupt_image_ends_failed_with_its_message(queue_service, worker, scene):
    job_id = submit(queue_service.url, scene["bytes"][: len(scene["bytes"]) // 3])
    state = poll_job(queue_service.url, job_id)
    assert state["status"] == "failed" and "cannot be decoded" in state["error"], state
    assert "cannot be decoded" in json_error(request(queue_service.url, f"/api/jobs/{job_id}/image"), 409)
    assert "Traceback" not in worker.log_text(), "bad input is one line in the worker's log"


def slow_image() -> bytes:
    """A 36 Mpx photo-like JPEG: decoding, resizing and drawing it takes the worker a few seconds."""
    y, x = np.mgrid[0:6000, 0:6000]
    pixels = np.stack([(x // 7) % 256, (y // 5) % 256, ((x + y) // 11) % 256], -1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=70)
    return out.getvalue()


def kill_when_started(url, job_id, victim):
    state = poll_job(url, job_id, until=("started", "finished", "failed"), timeout=120)
    assert state["status"] == "started", f"the job ended before the worker could be killed: {state}"
    victim.kill()


def test_a_worker_killed_mid_job_requeues_it_then_fails_it_when_retries_run_out(queue_service, worker, exported_dir,
                                                                                redis_url):
    worker.stop()  # the next job must go to a worker this test kills
    data = slow_image()
    with WorkerProcess(exported_dir, redis_url, "webdet-test-b") as first:
        job_id = submit(queue_service.url, data, "big.jpg")
        kill_when_started(queue_service.url, job_id, first)
    state = poll_job(queue_service.url, job_id, until=("queued", "failed", "finished"), timeout=60)
    assert state["status"] == "queued", f"with a retry left the job goes back to the queue: {state}"
    with WorkerProcess(exported_dir, redis_url, "webdet-test-c") as second:
        kill_when_started(queue_service.url, job_id, second)
    state = poll_job(queue_service.url, job_id, until=("failed", "finished"), timeout=60)
    assert state["status"] == "failed" and "worker" in state["error"] and "stopped" in state["error"], state
    worker.start()


def test_an_expired_job_is_404(queue_service, worker, scene):
    job_id = submit(queue_service.url, scene["bytes"])
    assert poll_job(queue_service.url, job_id)["status"] == "finished"
    time.sleep(RESULT_TTL + 2)
    assert "expired" in json_error(request(queue_service.url, f"/api/jobs/{job_id}"), 404)
    assert "expired" in json_error(request(queue_service.url, f"/api/jobs/{job_id}/image"), 404)
