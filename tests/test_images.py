"""Decoding, validating and storing images: baseline RGB JPEGs kept byte for byte, everything else re-encoded,
broken files named, EXIF orientation followed only when the annotator saw it."""
import io
import struct

import numpy as np
import pytest
from PIL import Image

from webdet.data_prep.images import ImageProblem, inspect_image, stored_jpeg


def exif_orientation(value: int, tag_type: int = 3) -> bytes:
    """A raw EXIF block holding only an Orientation tag: type 3 (SHORT) as cameras write it, 4 (LONG) as
    broken files do."""
    entry = struct.pack("<HHII", 0x0112, tag_type, 1, value)
    return b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + struct.pack("<I", 0)


def marked_image(size=(60, 40)) -> Image.Image:
    """Grey with a red block in the top-left corner, so rotations can be told apart."""
    pixels = np.full((size[1], size[0], 3), 128, np.uint8)
    pixels[:10, :10] = (255, 0, 0)
    return Image.fromarray(pixels)


def save(image: Image.Image, path, fmt="JPEG", **options):
    image.save(path, fmt, **options)
    return path


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_baseline_rgb_jpeg_is_stored_byte_for_byte(tmp_path):
    path = save(marked_image(), tmp_path / "a.jpg", quality=90)
    info = inspect_image(path, (60, 40))
    assert (info.width, info.height, info.reencode, info.warnings) == (60, 40, "", [])
    assert stored_jpeg(path, info) == path.read_bytes()


@pytest.mark.parametrize("name, make, reason", [
    ("gray.jpg", lambda p: save(marked_image().convert("L"), p), "L-mode JPEG"),
    ("cmyk.jpg", lambda p: save(marked_image().convert("CMYK"), p), "CMYK-mode JPEG"),
    ("progressive.jpg", lambda p: save(marked_image(), p, progressive=True), "progressive JPEG"),
    ("alpha.png", lambda p: save(marked_image().convert("RGBA"), p, "PNG"), "PNG file"),
    ("plain.bmp", lambda p: save(marked_image(), p, "BMP"), "BMP file"),
    ("photo.webp", lambda p: save(marked_image(), p, "WEBP", lossless=True), "WEBP file"),
    ("palette.gif", lambda p: save(marked_image().convert("P", palette=Image.Palette.ADAPTIVE), p, "GIF"), "GIF file"),
])
def test_other_images_are_reencoded_as_baseline_rgb_jpeg(tmp_path, name, make, reason):
    path = make(tmp_path / name)
    info = inspect_image(path)
    assert info.reencode == reason
    stored = decoded(stored_jpeg(path, info))
    assert stored.format == "JPEG" and stored.mode == "RGB" and not stored.info.get("progressive")
    assert stored.size == (60, 40)
    source_pixels = np.asarray(Image.open(path).convert("RGB"), np.float32)
    assert np.abs(np.asarray(stored, np.float32) - source_pixels).mean() < 3, "the same picture, up to JPEG loss"


def test_sixteen_bit_image_is_scaled_not_clipped_to_white(tmp_path):
    pixels = np.tile(np.linspace(0, 65535, 60, dtype=np.uint16), (40, 1))
    path = tmp_path / "depth.png"
    Image.fromarray(pixels).save(path)
    stored = np.asarray(decoded(stored_jpeg(path, inspect_image(path))))
    assert stored[:, :5].mean() < 30 and stored[:, -5:].mean() > 225, "dark stays dark, bright stays bright"


def test_truncated_jpeg_is_decoded_as_far_as_it_goes_and_reported(tmp_path):
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    noisy.save(buffer, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 2 // 3])
    info = inspect_image(path)
    assert [kind for kind, _ in info.warnings] == ["image_truncated"] and info.reencode == "truncated"
    assert decoded(stored_jpeg(path, info)).size == (120, 90)


@pytest.mark.parametrize("content, kind", [(b"this is not a jpeg", "image_undecodable"), (b"", "image_undecodable"),
                                           (None, "image_missing")])
def test_unusable_files_raise_image_problem_with_the_reason(tmp_path, content, kind):
    path = tmp_path / "bad.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageProblem) as caught:
        inspect_image(path)
    assert caught.value.kind == kind


def test_jpeg_cut_inside_its_header_is_undecodable(tmp_path):
    path = save(marked_image(), tmp_path / "head.jpg")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImageProblem) as caught:
        inspect_image(path)
    assert caught.value.kind == "image_undecodable"


def test_annotated_on_the_exif_rotated_view_the_pixels_are_rotated(tmp_path):
    # Stored 60x40 with orientation 6 (display rotated 90° clockwise): the annotator saw 40x60.
    path = save(marked_image(), tmp_path / "phone.jpg", exif=exif_orientation(6))
    info = inspect_image(path, annotated_size=(40, 60))
    assert (info.width, info.height, info.reencode) == (40, 60, "EXIF rotation")
    assert [kind for kind, _ in info.warnings] == ["exif_rotated"]
    stored = np.asarray(decoded(stored_jpeg(path, info)))
    assert stored.shape[:2] == (60, 40)
    assert stored[3, -3, 0] > 200 and stored[3, 3, 0] < 160, "the red corner moved to the top right"


def test_annotated_on_the_stored_pixels_the_exif_orientation_is_left_alone(tmp_path):
    path = save(marked_image(), tmp_path / "phone.jpg", exif=exif_orientation(6))
    info = inspect_image(path, annotated_size=(60, 40))
    assert (info.width, info.height, info.reencode, info.warnings) == (60, 40, "", [])


def test_square_image_is_not_rotated_since_the_stored_size_matches(tmp_path):
    path = save(marked_image((50, 50)), tmp_path / "square.jpg", exif=exif_orientation(6))
    assert inspect_image(path, annotated_size=(50, 50)).rotate is False


@pytest.mark.parametrize("value, tag_type", [(65537, 4), (0, 3), (9, 3)])
def test_malformed_exif_orientation_is_reported_and_ignored(tmp_path, value, tag_type):
    path = save(marked_image(), tmp_path / "odd.jpg", exif=exif_orientation(value, tag_type))
    info = inspect_image(path, annotated_size=(40, 60))
    assert info.rotate is False and (info.width, info.height) == (60, 40)
    kinds = [kind for kind, _ in info.warnings]
    assert kinds == ["exif_malformed", "size_mismatch"]
    assert f"Orientation is {value}" in info.warnings[0][1]


def test_corrupt_exif_block_is_reported(tmp_path):
    path = save(marked_image(), tmp_path / "corrupt.jpg", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x00garbage")
    info = inspect_image(path)
    assert [kind for kind, _ in info.warnings] == ["exif_malformed"]
    assert stored_jpeg(path, info) == path.read_bytes(), "the pixels are fine, so the file is kept"


def test_size_disagreeing_with_the_xml_uses_the_real_pixels(tmp_path):
    path = save(marked_image(), tmp_path / "resized.jpg")
    info = inspect_image(path, annotated_size=(120, 80))
    assert (info.width, info.height) == (60, 40)
    assert info.warnings == [("size_mismatch", "XML <size> 120x80 but the image is 60x40; the image's pixels are used")]


def test_images_beyond_pillows_pixel_limit_are_refused_and_near_it_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 60x40 = 2400 pixels: more than twice the limit
    path = save(marked_image(), tmp_path / "huge.jpg")
    with pytest.raises(ImageProblem) as caught:
        inspect_image(path)
    assert caught.value.kind == "image_too_large"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # between the limit and twice it: a warning
    info = inspect_image(path)
    assert [kind for kind, _ in info.warnings] == ["image_decoder_warning"]
    assert "exceeds limit" in info.warnings[0][1]
