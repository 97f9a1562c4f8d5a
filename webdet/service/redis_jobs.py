"""Async detection jobs on Redis + RQ: the API enqueues, `webdet worker` processes run the model.

A job that fails says why; a job whose worker died mid-way is found by its lapsed heartbeat (see
worker.py) and re-queued while retries remain, otherwise marked failed: never left "started".
"""
import re
import uuid

from webdet.errors import WebdetError
from webdet.service.api_errors import ApiError
from webdet.service.detection import Outcome
from webdet.service.jobs import JobState, unknown_job

QUEUE_NAME = "webdet"
JOB_FUNCTION = "webdet.service.worker.detect_job"
STATUS = {"queued": "queued", "deferred": "queued", "scheduled": "queued", "created": "queued",
          "started": "started", "finished": "finished", "failed": "failed", "stopped": "failed",
          "canceled": "failed"}


def connect(url: str):
    """A Redis client for `url`, checked with a PING so a wrong URL is one line at start-up."""
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        client = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=30, health_check_interval=30)
        client.ping()
    except (RedisError, ValueError, OSError) as exc:
        raise WebdetError(f"--queue {url}: cannot reach Redis ({exc})") from None
    return client


def failure_message(exc_string: str | None) -> str:
    """The last line of the job's exception, without the exception's dotted class name."""
    if not exc_string:
        return "the job failed"
    if "AbandonedJobError" in exc_string:
        return "the worker running this job stopped (killed or crashed) before it finished"
    last = [line for line in exc_string.strip().splitlines() if line.strip()][-1]
    return re.sub(r"^[\w.]+(Error|Exception|Timeout\w*): ", "", last)


class RedisJobs:
    backend = "redis"

    def __init__(self, url: str, result_ttl: int, retries: int, job_timeout: int, max_pixels: int):
        from rq import Queue

        self.url, self.result_ttl, self.retries, self.job_timeout = url, result_ttl, retries, job_timeout
        self.max_pixels = max_pixels
        self.redis = connect(url)
        self.queue = Queue(QUEUE_NAME, connection=self.redis)

    def _guard(self, call, *args):
        from redis.exceptions import RedisError

        try:
            return call(*args)
        except RedisError as exc:
            raise ApiError(503, f"the job queue at {self.url} is unreachable ({exc})") from None

    def submit(self, data: bytes, params) -> str:
        from rq import Retry

        def enqueue():
            job = self.queue.enqueue_call(JOB_FUNCTION, args=(data, params.to_dict(), self.max_pixels),
                                          job_id=uuid.uuid4().hex, timeout=self.job_timeout,
                                          result_ttl=self.result_ttl, failure_ttl=self.result_ttl,
                                          retry=Retry(max=self.retries) if self.retries else None)
            return job.id

        return self._guard(enqueue)

    def _fetch(self, job_id: str):
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        try:
            return Job.fetch(job_id, connection=self.redis)
        except NoSuchJobError:
            raise unknown_job(job_id, self.result_ttl) from None

    def _state(self, job_id: str) -> JobState:
        job = self._fetch(job_id)
        status = job.get_status()
        if status == "started":
            self.queue.started_job_registry.cleanup()  # re-queues or fails jobs of dead workers
            status = job.get_status()
        state = JobState(job.id, STATUS.get(str(getattr(status, "value", status)), "queued"),
                         _ts(job.enqueued_at or job.created_at), _ts(job.started_at), _ts(job.ended_at))
        if state.status == "failed":
            result = job.latest_result()
            state.error = failure_message(result.exc_string if result else None)
        return state

    def get(self, job_id: str) -> JobState:
        return self._guard(self._state, job_id)

    def outcome(self, job_id: str) -> Outcome | None:
        value = self._guard(lambda: self._fetch(job_id).return_value())
        return Outcome(**value) if value else None

    def describe(self) -> dict:
        from rq import Worker

        def read():
            return {"backend": self.backend, "queued": self.queue.count,
                    "started": self.queue.started_job_registry.count,
                    "workers": Worker.count(queue=self.queue)}

        return self._guard(read)

    def close(self) -> None:
        self.redis.close()


def _ts(value) -> float | None:
    return value.timestamp() if value is not None else None
