"""Reading an upload: raw image bytes or multipart/form-data with the field `file`, never more than
`--max-upload-mb` (refused from Content-Length before the body is read, or as soon as a stream passes it)."""
from dataclasses import dataclass

from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request

from webdet.service.api_errors import ApiError


@dataclass
class Upload:
    data: bytes
    filename: str | None = None
    orientation: str | None = None  # the multipart field as sent; checked with the query's


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"the upload is larger than --max-upload-mb {limit / 1024 / 1024:g} MB",
                    {"Connection": "close"})


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "the client closed the connection before the upload was complete") from None
    return b"".join(chunks)


async def read_upload(request: Request, limit: int) -> Upload:
    """The image bytes and what came with them."""
    body = await read_body(request, limit)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return Upload(body)
    return await _parse_multipart(request, body)


async def _parse_multipart(request: Request, body: bytes) -> Upload:
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=2, max_fields=20)
    except (MultiPartException, ValueError, AssertionError) as exc:
        raise ApiError(400, f"malformed multipart/form-data body ({exc})") from None
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ApiError(422, "multipart upload without a file in the field 'file'")
        data = await upload.read()
        orientation = form.get("orientation")
        return Upload(data, upload.filename, orientation if isinstance(orientation, str) else None)
    finally:
        await form.close()


def parse_orientation(query: int | None, field: str | None) -> int | None:
    """EXIF orientation 1–8 from the query or the form field (the form field wins when both are sent)."""
    if field is None or field.strip() == "":
        return query
    text = field.strip()
    if not text.isdigit() or not 1 <= int(text) <= 8:
        raise ApiError(422, f"orientation {text[:20]!r}: must be an EXIF orientation from 1 to 8")
    return int(text)
