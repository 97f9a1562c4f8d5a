"""Uploaded image bytes → upright RGB pixels, refusing what is too big before it is decoded.

Pillow reads only the header on `Image.open`, so the pixel count is known before any decoding: a
144 Mpx PNG of a few hundred KB is refused in microseconds instead of costing 30 s and 0.5 GB.
"""
import io
import re
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from webdet.service.api_errors import ApiError

FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "GIF", "MPO"}
# EXIF orientation (1–8) → the transpose that makes the image upright, as viewers apply it.
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """The image, header read and size checked but not decoded; 415 for non-images, 413 when too big."""
    if not data:
        raise ApiError(400, "the upload is empty: send image bytes, or multipart/form-data with the field 'file'")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow refused it at the header, as we would
        size = f"{int(found.group(1)) / 1e6:.1f} Mpx" if found else "more pixels than Pillow allows"
        raise ApiError(413, f"the image is {size}; --max-pixels allows {max_pixels / 1e6:g} Mpx") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ApiError(415, "the upload is not an image (send JPEG, PNG, WebP, BMP or GIF)") from None
    if image.format not in FORMATS:
        raise ApiError(415, f"{image.format} images are not accepted (send JPEG, PNG, WebP, BMP or GIF)")
    width, height = image.size
    if width * height > max_pixels:
        raise ApiError(413, f"the image is {width}x{height} = {width * height / 1e6:.1f} Mpx; "
                            f"--max-pixels allows {max_pixels / 1e6:g} Mpx")
    if width < 1 or height < 1:
        raise ApiError(400, f"the image is {width}x{height} pixels")
    return image


def decode_upright(image: Image.Image, orientation: int | None) -> np.ndarray:
    """RGB pixels as a person sees the photo: `orientation` when given, else the file's own EXIF tag."""
    try:
        image.load()
        if orientation is not None:
            upright = image.transpose(UPRIGHT[orientation]) if orientation in UPRIGHT else image
        else:
            upright = _exif_upright(image)
        return np.asarray(upright.convert("RGB"))
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ApiError(400, f"the {image.format} image cannot be decoded ({reason})") from None


def _exif_upright(image: Image.Image) -> Image.Image:
    """A broken EXIF block must not cost the detection: it is then read as orientation 1."""
    try:
        return ImageOps.exif_transpose(image)
    except (SyntaxError, ValueError, TypeError, KeyError, struct.error):
        return image


def encode(image: Image.Image, like_format: str | None) -> tuple[bytes, str, str]:
    """(bytes, media type, extension): JPEG when the upload was a JPEG, PNG otherwise."""
    out = io.BytesIO()
    if like_format in ("JPEG", "MPO"):
        image.save(out, "JPEG", quality=90)
        return out.getvalue(), "image/jpeg", "jpg"
    image.save(out, "PNG")
    return out.getvalue(), "image/png", "png"
