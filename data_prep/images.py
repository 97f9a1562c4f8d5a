"""Decoding and validating images, and encoding them as the baseline RGB JPEG TensorFlow reads.

A file is decoded fully (that is the only way to find truncated or corrupt data). Its bytes are kept
as they are when they already are a baseline RGB JPEG showing the pixels the annotator saw; anything
else (grayscale, CMYK, alpha, PNG, BMP, WebP, progressive, truncated, EXIF-rotated) is re-encoded.
"""
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
JPEG_QUALITY = 95
EXIF_ORIENTATION = 0x0112
ROTATING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
HIGH_BIT_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I", "F")


class ImageProblem(Exception):
    """The image cannot be used: `kind` names the reason for the report."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind

    def __reduce__(self):  # travels back from worker processes intact
        return type(self), (self.kind, str(self))


@dataclass
class ImageInfo:
    """What validation found: the size of the pixels to store and whether the file must be re-encoded."""
    width: int
    height: int
    reencode: str                  # why the file is re-encoded ("" = its own bytes are stored as they are)
    rotate: bool                   # apply the EXIF orientation before encoding (the annotator saw it rotated)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (kind, detail)


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _open(data: bytes, warns: list) -> Image.Image:
    """Decode fully; a truncated file is decoded as far as it goes and reported."""
    try:
        return _decode(data)
    except UnidentifiedImageError:
        raise ImageProblem("image_undecodable", "not an image format Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise ImageProblem("image_too_large", str(exc)) from None
    except Exception as exc:  # Pillow's decoders raise many types on corrupt data
        if "truncated" not in str(exc).lower():
            raise ImageProblem("image_undecodable", f"cannot decode ({type(exc).__name__}: {exc})") from None
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        image = _decode(data)
    except Exception as exc:  # as above
        raise ImageProblem("image_undecodable", f"truncated and unreadable ({exc})") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    warns.append(("image_truncated", "the file is truncated; decoded what is there and re-encoded it"))
    return image


def _orientation(image: Image.Image, warns: list) -> int:
    """The EXIF orientation (1 = as stored); an unreadable or invalid tag is reported and read as 1."""
    try:
        value = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception as exc:  # Pillow raises many types on corrupt EXIF blocks
        warns.append(("exif_malformed", f"unreadable EXIF block ({type(exc).__name__}); no rotation assumed"))
        return 1
    if isinstance(value, int) and 1 <= value <= 8:
        return value
    warns.append(("exif_malformed", f"EXIF Orientation is {value!r}, not 1–8; no rotation assumed"))
    return 1


def _decoder_warnings(caught, warns: list) -> None:
    """What Pillow only warned about while decoding (corrupt EXIF, huge images…), into the report."""
    for message in dict.fromkeys(str(w.message).strip().rstrip(".") for w in caught):
        kind = "exif_malformed" if "exif" in message.lower() else "image_decoder_warning"
        warns.append((kind, f"{message}; the image is used as decoded"))


def _annotated_rotated(orientation: int, stored_size: tuple, annotated_size) -> bool:
    """True when the XML size matches the EXIF-rotated image and not the stored pixels.

    LabelImg shows stored pixels, so a match with the stored size (square images included) wins.
    """
    if orientation not in ROTATING_ORIENTATIONS or not annotated_size:
        return False
    annotated = tuple(annotated_size)
    return annotated != stored_size and annotated == stored_size[::-1]


def _reencode_reason(image: Image.Image, truncated: bool, rotate: bool) -> str:
    """Why the stored bytes cannot be the file's own ("" when they can: a baseline RGB JPEG)."""
    if truncated:
        return "truncated"
    if rotate:
        return "EXIF rotation"
    if image.format != "JPEG":
        return f"{image.format or 'unknown'} file"
    if image.mode != "RGB":
        return f"{image.mode}-mode JPEG"
    if image.info.get("progressive") or image.info.get("progression"):
        return "progressive JPEG"
    return ""


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB; 16-bit and float images are scaled to 0..255 instead of clipped."""
    if image.mode in HIGH_BIT_DEPTH_MODES:
        pixels = np.asarray(image, dtype=np.float64)
        top = pixels.max() or 1.0
        image = Image.fromarray(np.clip(pixels * (255.0 / top), 0, 255).astype(np.uint8))
    return image.convert("RGB")


def _encode_jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    _to_rgb(image).save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def _read_bytes(path) -> bytes:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ImageProblem("image_missing", "image file not found") from None
    except OSError as exc:
        raise ImageProblem("image_unreadable", f"cannot read ({exc.strerror})") from None
    if not data:
        raise ImageProblem("image_undecodable", "empty file")
    return data


def inspect_image(path, annotated_size=None) -> ImageInfo:
    """Decode and validate an image as the annotator saw it; raises ImageProblem when it is unusable.

    `annotated_size` is the (width, height) written in the XML. When it matches the EXIF-rotated image
    but not the stored pixels, the annotator saw the rotated image, so the pixels will be rotated to
    match. Otherwise the stored pixels are used, as LabelImg shows them (TensorFlow ignores EXIF too).
    """
    warns: list[tuple[str, str]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = _open(_read_bytes(path), warns)
        truncated = any(kind == "image_truncated" for kind, _ in warns)
        orientation = _orientation(image, warns)
    _decoder_warnings(caught, warns)
    rotate = _annotated_rotated(orientation, image.size, annotated_size)
    width, height = image.size[::-1] if rotate else image.size
    if rotate:
        warns.append(("exif_rotated", f"annotated on the EXIF-rotated image (orientation {orientation}); "
                                      "pixels rotated to match the boxes"))
    elif annotated_size and tuple(annotated_size) != (width, height):
        warns.append(("size_mismatch", f"XML <size> {annotated_size[0]}x{annotated_size[1]} but the image is "
                                       f"{width}x{height}; the image's pixels are used"))
    return ImageInfo(width, height, _reencode_reason(image, truncated, rotate), rotate, warns)


def stored_jpeg(path, info: ImageInfo) -> bytes:
    """The JPEG bytes to store: the file itself, or its pixels (rotated if needed) re-encoded as RGB JPEG."""
    data = _read_bytes(path)
    if not info.reencode:
        return data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # already reported by inspect_image
        image = _open(data, [])
        if info.rotate:
            image = ImageOps.exif_transpose(image)
        return _encode_jpeg(image)
