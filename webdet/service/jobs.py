"""Async detection jobs in this process: a bounded thread pool and results kept for `--result-ttl`.

Nothing to install; jobs live as long as the process. `--queue redis://…` (redis_jobs.py) is the
same interface on Redis + RQ when jobs must survive restarts or run on other machines.
"""
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from webdet.service.api_errors import ApiError
from webdet.service.detection import Outcome

log = logging.getLogger("webdet.service")
ACTIVE = ("queued", "started")


@dataclass
class JobState:
    """What `GET /api/jobs/{id}` reports, whichever backend ran the job."""

    id: str
    status: str  # queued | started | finished | failed
    created_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None
    outcome: Outcome | None = None

    def to_json(self) -> dict:
        body = {"id": self.id, "status": self.status, "created_at": self.created_at,
                "started_at": self.started_at, "ended_at": self.ended_at}
        if self.status == "failed":
            body["error"] = self.error
        if self.status == "finished":
            body["result_url"] = f"/api/jobs/{self.id}/result"
            body["image_url"] = f"/api/jobs/{self.id}/image"
        return body


def unknown_job(job_id: str, ttl: int) -> ApiError:
    return ApiError(404, f"no job {job_id[:64]!r}: unknown, or its result expired (--result-ttl {ttl} s)")


class InProcessJobs:
    backend = "memory"

    def __init__(self, run, threads: int, max_queued: int, result_ttl: int):
        self._run = run  # (data, DetectParams) -> Outcome
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="webdet-job")
        self._jobs: dict[str, JobState] = {}
        self._lock = threading.Lock()
        self.max_queued = max_queued
        self.result_ttl = result_ttl

    def submit(self, data: bytes, params) -> str:
        with self._lock:
            self._expire()
            if sum(j.status in ACTIVE for j in self._jobs.values()) >= self.max_queued:
                raise ApiError(503, f"the job queue is full (--max-queued {self.max_queued}); retry shortly",
                               {"Retry-After": "5"})
            job = JobState(uuid.uuid4().hex, "queued", created_at=time.time())
            self._jobs[job.id] = job
        self._pool.submit(self._execute, job, data, params)
        return job.id

    def _execute(self, job: JobState, data: bytes, params) -> None:
        job.started_at, job.status = time.time(), "started"
        try:
            job.outcome = self._run(data, params)
            job.status = "finished"
        except ApiError as exc:
            job.error, job.status = exc.message, "failed"
        except Exception as exc:  # noqa: BLE001 - the job fails with its reason; the service goes on
            job.error, job.status = f"{type(exc).__name__}: {exc}", "failed"
            log.error("job %s failed: %s", job.id, job.error)
        job.ended_at = time.time()

    def _expire(self) -> None:
        cutoff = time.time() - self.result_ttl
        for job_id in [j.id for j in self._jobs.values() if j.ended_at is not None and j.ended_at < cutoff]:
            del self._jobs[job_id]

    def get(self, job_id: str) -> JobState:
        with self._lock:
            self._expire()
            job = self._jobs.get(job_id)
        if job is None:
            raise unknown_job(job_id, self.result_ttl)
        return job

    def outcome(self, job_id: str) -> Outcome | None:
        return self.get(job_id).outcome

    def describe(self) -> dict:
        with self._lock:
            active = [j.status for j in self._jobs.values()]
        return {"backend": self.backend, "queued": active.count("queued"), "started": active.count("started")}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
