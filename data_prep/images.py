"""Decoding and validating images, and encoding them as the baseline RGB JPEG TensorFlow reads."""
import io
import time
import warnings
from dataclasses import dataclass, field

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
JPEG_QUALITY = 95
ROTATING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


class ImageProblem(Exception):
    """The image cannot be used: `kind` names the reason for the report."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class LoadedImage:
    encoded: bytes
    width: int
    height: int
    reencoded: bool
    warnings: list[tuple[str, str]] = field(default_factory=list)
    decode_seconds: float = 0.0
    encode_seconds: float = 0.0


def _open(data: bytes, warns: list) -> Image.Image:
    """Decode fully; a truncated file is decoded as far as it goes and reported."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        return image
    except UnidentifiedImageError:
        raise ImageProblem("image_undecodable", "not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if "truncated" not in str(exc).lower():
            raise ImageProblem("image_undecodable", f"cannot decode ({exc})") from None
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageProblem("image_undecodable", f"truncated and unreadable ({exc})") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    warns.append(("image_truncated", "the file is truncated; decoded what is there and re-encoded it"))
    return image


def _orientation(image: Image.Image, warns: list) -> int:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = image.getexif().get(0x0112, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception as exc:  # Pillow raises many types on malformed EXIF
        warns.append(("exif_malformed", f"unreadable EXIF ({type(exc).__name__}); orientation ignored"))
        return 1


def _is_baseline_rgb_jpeg(image: Image.Image) -> bool:
    return (image.format == "JPEG" and image.mode == "RGB" and not image.info.get("progressive")
            and not image.info.get("progression"))


def load_image(path, annotated_size=None) -> LoadedImage:
    """Read an image as the annotator saw it, re-encoding only when TensorFlow would not see the same pixels.

    `annotated_size` is the (width, height) written in the XML. When it matches the EXIF-rotated image
    but not the stored pixels, the annotator saw the rotated image, so the pixels are rotated to match.
    Otherwise the stored pixels are used, as LabelImg shows them (TensorFlow ignores EXIF orientation too).
    """
    warns: list[tuple[str, str]] = []
    start = time.perf_counter()
    try:
        data = open(path, "rb").read()
    except FileNotFoundError:
        raise ImageProblem("image_missing", "image file not found") from None
    except OSError as exc:
        raise ImageProblem("image_unreadable", f"cannot read ({exc.strerror})") from None
    if not data:
        raise ImageProblem("image_undecodable", "empty file")
    image = _open(data, warns)
    truncated = any(kind == "image_truncated" for kind, _ in warns)
    orientation = _orientation(image, warns)
    raw_size = image.size
    rotate = False
    if orientation in ROTATING_ORIENTATIONS and annotated_size and tuple(annotated_size) == raw_size[::-1]:
        rotate = True
        warns.append(("exif_rotated", f"annotated on the EXIF-rotated image (orientation {orientation}); "
                                      "pixels rotated to match the boxes"))
    decoded = time.perf_counter()
    if rotate:
        image = ImageOps.exif_transpose(image)
    needs_encode = truncated or rotate or not _is_baseline_rgb_jpeg(image)
    if needs_encode:
        out = io.BytesIO()
        image.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY)
        data = out.getvalue()
    width, height = image.size
    if annotated_size and tuple(annotated_size) != (width, height):
        warns.append(("size_mismatch", f"XML <size> {annotated_size[0]}x{annotated_size[1]} but the image is "
                                       f"{width}x{height}; the image's pixels are used"))
    done = time.perf_counter()
    return LoadedImage(data, width, height, needs_encode, warns, decoded - start, done - decoded)
