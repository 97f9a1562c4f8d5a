"""`webdet worker`: an RQ worker that loads the model once and runs detection jobs from Redis.

It runs each job in its own process (RQ's SimpleWorker), so the model stays loaded between jobs
instead of being rebuilt per job. While a job runs, a thread renews the job's heartbeat every few
seconds with a short lease: if the worker is killed, the lease lapses and the API's registry check
re-queues the job (retries left) or marks it failed, within HEARTBEAT_TTL seconds.
"""
import logging
import os
import socket
import threading

from webdet.service.api_errors import ApiError
from webdet.service.detection import DetectParams, detect_image
from webdet.service.redis_jobs import QUEUE_NAME, connect

log = logging.getLogger("webdet.worker")
HEARTBEAT_TTL = 10
HEARTBEAT_EVERY = 2.0
_detector = None  # this process's model, loaded by run_worker before any job


class JobInputError(Exception):
    """The job's image or parameters were wrong: its message is the whole story, no traceback needed."""


def detect_job(data: bytes, params: dict, max_pixels: int) -> dict:
    """The RQ job: what `/api/detect?format=image` would answer, as a dict for the result store."""
    if _detector is None:
        raise RuntimeError("this job needs a `webdet worker` process (it loads the model before taking jobs)")
    try:
        outcome = detect_image(_detector, data, DetectParams(**params), max_pixels, render=True)
    except ApiError as exc:
        raise JobInputError(exc.message) from None
    return {"result": outcome.result, "image": outcome.image, "media_type": outcome.media_type,
            "download_name": outcome.download_name}


def worker_class():
    from rq.worker import SimpleWorker, WorkerStatus

    class DetectionWorker(SimpleWorker):
        """SimpleWorker with a short, renewed job lease, and one-line logs for bad input."""

        def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
            return HEARTBEAT_TTL

        def execute_job(self, job, queue):
            execution = self.prepare_execution(job)
            done = threading.Event()
            beat = threading.Thread(target=self._renew, args=(job, execution, done), daemon=True)
            beat.start()
            try:
                self.perform_job(job, queue, execution)
            finally:
                done.set()
                beat.join()
            self.set_state(WorkerStatus.IDLE)

        def _renew(self, job, execution, done: threading.Event) -> None:
            while not done.wait(HEARTBEAT_EVERY):
                try:
                    self.maintain_heartbeats(job, execution)
                except Exception as exc:  # noqa: BLE001 - a missed beat only shortens the lease
                    self.log.warning("heartbeat for job %s failed: %s", job.id, exc)

        def handle_exception(self, job, *exc_info):
            if exc_info and isinstance(exc_info[1], JobInputError):
                self.log.warning("job %s failed: %s", job.id, exc_info[1])
                return
            super().handle_exception(job, *exc_info)

    return DetectionWorker


def run_worker(queue_url: str, export_dir, name: str | None = None, burst: bool = False) -> bool:
    """Load and warm the model, then take jobs until stopped (or, with `burst`, until the queue is empty)."""
    global _detector
    from rq import Queue

    from webdet.service.model import load_warm_detector

    redis = connect(queue_url)
    log.info("loading the model from %s", export_dir)
    _detector = load_warm_detector(export_dir)
    name = name or f"webdet-{socket.gethostname()}-{os.getpid()}"
    worker = worker_class()([Queue(QUEUE_NAME, connection=redis)], connection=redis, name=name)
    log.info("worker %s ready on %s (queue %s)", name, queue_url, QUEUE_NAME)
    return worker.work(burst=burst, logging_level="INFO")
