"""One detection request, the same for `/api/detect`, in-process jobs and RQ workers:
bytes + parameters → the JSON answer, and the rendered image when asked for."""
import re
import time
from dataclasses import asdict, dataclass

from webdet.service.images import decode_upright, encode, open_image


@dataclass(frozen=True)
class DetectParams:
    """What a client may choose per request; None means the export's own default."""

    score_threshold: float | None = None
    max_detections: int | None = None
    orientation: int | None = None
    filename: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Outcome:
    """The JSON answer, plus the rendered download when it was asked for."""

    result: dict
    image: bytes | None = None
    media_type: str | None = None
    download_name: str | None = None


def download_name(filename: str | None, extension: str) -> str:
    """`photo-detections.jpg` for photo.jpeg; only safe characters survive in a header."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", (filename or "image").rsplit("/", 1)[-1].rsplit(".", 1)[0])[:80]
    return f"{stem or 'image'}-detections.{extension}"


def detect_image(detector, data: bytes, params: DetectParams, max_pixels: int, render: bool) -> Outcome:
    """Decode (within the limits), detect, and render when asked; ApiError for anything the client sent wrong."""
    image = open_image(data, max_pixels)
    source_format = image.format
    pixels = decode_upright(image, params.orientation)
    started = time.perf_counter()
    detections = detector.detect(pixels, params.score_threshold)
    if params.max_detections is not None:
        detections = detections[: params.max_detections]
    result = {"width": int(pixels.shape[1]), "height": int(pixels.shape[0]), "detections": detections,
              "inference_ms": round((time.perf_counter() - started) * 1000, 1)}
    if not render:
        return Outcome(result)
    from webdet.export.predict import draw  # the same drawing as `webdet predict`

    data, media_type, extension = encode(draw(pixels, detections), source_format)
    return Outcome(result, data, media_type, download_name(params.filename, extension))
