"""The FastAPI app: the web app and model as static files, the detection API and async jobs.

Every answer of `/api/*` is JSON; errors are `{"error": "…"}` with the status code that fits and the
parameter or limit at fault named (docs/api.md).
"""
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Annotated, Literal

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from webdet import __version__
from webdet.service.api_errors import ApiError
from webdet.service.detection import DetectParams, Outcome, detect_image
from webdet.service.images import open_image
from webdet.service.jobs import InProcessJobs
from webdet.service.middleware import LastResort, ServiceHeaders, StaticRoot
from webdet.service.model import ModelService
from webdet.service.settings import ServiceSettings, web_model_dir
from webdet.service.uploads import parse_orientation, read_upload

IMAGE_BODY = {"required": True, "content": {
    **{t: {"schema": {"type": "string", "format": "binary"}}
       for t in ("image/jpeg", "image/png", "image/webp", "application/octet-stream")},
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"},
                       "orientation": {"type": "integer", "minimum": 1, "maximum": 8}}}}}}
ERROR = {"content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}}}}
ERRORS = {code: {"description": text, **ERROR} for code, text in (
    (400, "undecodable image or malformed body"), (413, "upload or image over the limits"),
    (415, "not an image"), (422, "a parameter out of range"), (503, "model not ready or queue unavailable"))}

Threshold = Annotated[float | None, Query(ge=0, le=1, allow_inf_nan=False,
                                          description="keep detections scoring at least this (default: the export's)")]
MaxDetections = Annotated[int | None, Query(ge=1, description="at most this many detections, best first")]
Orientation = Annotated[int | None, Query(ge=1, le=8, description="EXIF orientation 1–8 of the upload, "
                                          "when the client has read it (default: the file's own EXIF tag)")]


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers=headers)


def describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}"
                     + (f" (got {str(err['input'])[:40]!r})" if "input" in err and err["input"] is not None else ""))
    return "; ".join(parts) or "invalid request"


def image_response(outcome: Outcome) -> Response:
    return Response(outcome.image, media_type=outcome.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{outcome.download_name}"'})


def create_app(settings: ServiceSettings, model: ModelService | None = None) -> FastAPI:
    model = model or ModelService(settings.export_dir)
    limiter = anyio.CapacityLimiter(settings.threads)

    def run(data: bytes, params: DetectParams, render: bool = True) -> Outcome:
        return detect_image(model.require(), data, params, settings.max_pixels, render)

    if settings.uses_redis:
        from webdet.service.redis_jobs import RedisJobs

        jobs = RedisJobs(settings.queue, settings.result_ttl, settings.retries, settings.job_timeout,
                         settings.max_pixels)
    else:
        jobs = InProcessJobs(run, settings.threads, settings.max_queued, settings.result_ttl)

    @asynccontextmanager
    async def lifespan(_app):
        model.start()
        yield
        jobs.close()

    app = FastAPI(title="webdet detection service", version=__version__, lifespan=lifespan,
                  description="Object detection with a model exported by `webdet export`.")
    app.state.model, app.state.jobs = model, jobs

    @app.exception_handler(ApiError)
    async def on_api_error(_request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation(_request, exc: RequestValidationError):
        return error_response(422, describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException):
        message = {404: f"not found: {request.url.path[:200]}",
                   405: f"{request.method} is not allowed on {request.url.path[:200]}"}.get(exc.status_code, exc.detail)
        return error_response(exc.status_code, str(message), getattr(exc, "headers", None))

    async def upload_and_params(request: Request, score_threshold, max_detections, orientation):
        upload = await read_upload(request, settings.max_upload_bytes)
        params = DetectParams(score_threshold, model.check_max_detections(max_detections),
                              parse_orientation(orientation, upload.orientation), upload.filename)
        return upload, params

    @app.get("/api/status", tags=["service"], responses={503: {"description": "model not ready yet"}})
    async def status():
        """Readiness and the model served: 200 once the model is loaded and warmed up, 503 until then."""
        body = {"status": model.state, "ready": model.ready, "model": model.info, "version": __version__,
                "load_seconds": model.load_seconds}
        if model.error:
            body["error"] = model.error
        try:
            body["queue"] = await anyio.to_thread.run_sync(jobs.describe)
        except ApiError as exc:
            body["queue"] = {"backend": jobs.backend, "error": exc.message}
        return JSONResponse(body, 200 if model.ready else 503)

    @app.post("/api/detect", tags=["detection"], openapi_extra={"requestBody": IMAGE_BODY},
              responses={200: {"description": "detections (JSON), or the image with boxes drawn"}, **ERRORS})
    async def detect(request: Request, score_threshold: Threshold = None, max_detections: MaxDetections = None,
                     orientation: Orientation = None,
                     output: Annotated[Literal["json", "image"], Query(alias="format")] = "json"):
        """Detect objects in one image: raw bytes, or multipart/form-data with the field `file`."""
        model.require()
        upload, params = await upload_and_params(request, score_threshold, max_detections, orientation)
        outcome = await anyio.to_thread.run_sync(partial(run, upload.data, params, output == "image"),
                                                 limiter=limiter)
        return image_response(outcome) if output == "image" else outcome.result

    @app.post("/api/jobs", tags=["jobs"], status_code=202, openapi_extra={"requestBody": IMAGE_BODY},
              responses={202: {"description": "the job was queued"}, **ERRORS})
    async def submit_job(request: Request, score_threshold: Threshold = None,
                         max_detections: MaxDetections = None, orientation: Orientation = None):
        """Queue a detection; poll `status_url`, then download `/result` (JSON) or `/image`."""
        if not settings.uses_redis:
            model.require()
        upload, params = await upload_and_params(request, score_threshold, max_detections, orientation)
        open_image(upload.data, settings.max_pixels)  # 415/413 now rather than a failed job later
        job_id = await anyio.to_thread.run_sync(jobs.submit, upload.data, params)
        url = f"/api/jobs/{job_id}"
        return JSONResponse({"id": job_id, "status": "queued", "status_url": url}, 202, headers={"Location": url})

    @app.get("/api/jobs/{job_id}", tags=["jobs"], responses={404: {"description": "unknown or expired", **ERROR}})
    async def job_status(job_id: str):
        """queued | started | finished | failed (with its error)."""
        return (await anyio.to_thread.run_sync(jobs.get, job_id)).to_json()

    async def finished_outcome(job_id: str) -> Outcome:
        state = await anyio.to_thread.run_sync(jobs.get, job_id)
        if state.status == "failed":
            raise ApiError(409, f"job {job_id} failed: {state.error}")
        if state.status != "finished":
            raise ApiError(409, f"job {job_id} is {state.status}; poll /api/jobs/{job_id} until it is finished",
                           {"Retry-After": "1"})
        outcome = await anyio.to_thread.run_sync(jobs.outcome, job_id)
        if outcome is None:
            raise ApiError(404, f"job {job_id}: its result expired (--result-ttl {settings.result_ttl} s)")
        return outcome

    @app.get("/api/jobs/{job_id}/result", tags=["jobs"],
             responses={404: {"description": "unknown or expired", **ERROR}, 409: {"description": "not finished", **ERROR}})
    async def job_result(job_id: str):
        """The detections of a finished job."""
        return (await finished_outcome(job_id)).result

    @app.get("/api/jobs/{job_id}/image", tags=["jobs"],
             responses={404: {"description": "unknown or expired", **ERROR}, 409: {"description": "not finished", **ERROR}})
    async def job_image(job_id: str):
        """The finished job's image with its boxes drawn, as a download."""
        return image_response(await finished_outcome(job_id))

    api_routes = [r for r in app.routes if isinstance(r, APIRoute) and r.path.startswith("/api/")]

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
                   include_in_schema=False)
    async def api_fallback(request: Request, rest: str):
        """A path under /api/ that no endpoint has: 405 naming the allowed methods, or 404."""
        allowed = sorted({m for r in api_routes if r.path_regex.match(request.url.path) for m in r.methods})
        if allowed:
            raise ApiError(405, f"{request.method} is not allowed on {request.url.path[:200]}; use "
                                f"{', '.join(allowed)}", {"Allow": ", ".join(allowed)})
        raise ApiError(404, f"not found: {request.url.path[:200]}")

    app.mount("/model", StaticRoot(directory=web_model_dir(settings.export_dir)), name="model")
    app.mount("/", StaticRoot(directory=Path(settings.app_root), html=True), name="app")
    app.add_middleware(ServiceHeaders, api_cross_origin=bool(settings.cors_origins))
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["*"], expose_headers=["Content-Disposition", "Location"], max_age=600)
    app.add_middleware(LastResort)
    return app


def app_from_env() -> FastAPI:
    """The factory uvicorn's worker processes call (`--workers N`): settings arrive as JSON in the env."""
    return create_app(ServiceSettings.from_env())
