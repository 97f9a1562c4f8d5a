"""`webdet synth`: a synthetic LabelImg dataset with known answers, for the demo and the tests.

Three shape classes (circle, square, triangle) in random colours on cluttered backgrounds (gradients,
noise, lines, faint blobs), 0–4 objects per image at varied sizes. The class is the shape, not the
colour, so a detector has to learn shapes; objects are solid and large enough that a small SSD
trained from scratch on a CPU learns them in minutes.
"""
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from webdet.data_prep.voc import Box, labelimg_truncated, write_annotation
from webdet.errors import WebdetError

CLASSES = ("circle", "square", "triangle")


def _background(rng, width: int, height: int) -> Image.Image:
    """A smooth two-colour gradient with noise, lines and faint blobs."""
    a, b = rng.integers(40, 215, 3), rng.integers(40, 215, 3)
    t = np.linspace(0, 1, width if rng.random() < 0.5 else height)
    ramp = a[None, :] * (1 - t[:, None]) + b[None, :] * t[:, None]
    grid = np.broadcast_to(ramp[None] if len(t) == width else ramp[:, None], (height, width, 3)).astype(np.float32)
    grid = grid + rng.normal(0, 10, grid.shape)
    image = Image.fromarray(np.clip(grid, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(3, 9)):
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.line([tuple(rng.integers(0, [width, height])) for _ in range(2)], fill=colour,
                  width=int(rng.integers(1, 3)))
    for _ in range(rng.integers(2, 6)):
        x, y, r = int(rng.integers(0, width)), int(rng.integers(0, height)), int(rng.integers(4, 14))
        under = grid[min(y, height - 1), min(x, width - 1)]
        shade = tuple(int(c) for c in np.clip(under + rng.normal(0, 25, 3), 0, 255))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=shade)
    return image.filter(ImageFilter.GaussianBlur(0.6))


def _overlaps(box, placed, limit=0.25) -> bool:
    for other in placed:
        ix = max(0, min(box[2], other[2]) - max(box[0], other[0]))
        iy = max(0, min(box[3], other[3]) - max(box[1], other[1]))
        if ix * iy > limit * min((box[2] - box[0]) * (box[3] - box[1]), (other[2] - other[0]) * (other[3] - other[1])):
            return True
    return False


def _draw_shape(draw, name: str, box, colour, outline) -> None:
    x0, y0, x1, y1 = box
    if name == "circle":
        draw.ellipse(box, fill=colour, outline=outline, width=2)
    elif name == "square":
        draw.rectangle(box, fill=colour, outline=outline, width=2)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=colour, outline=outline)


def make_image(rng, width: int, height: int):
    """One image and its boxes (pixel corners, exactly the drawn extent)."""
    image = _background(rng, width, height)
    draw = ImageDraw.Draw(image)
    count = 0 if rng.random() < 0.1 else int(rng.integers(1, 5))
    placed, boxes = [], []
    for _ in range(count * 10):
        if len(boxes) == count:
            break
        name = CLASSES[int(rng.integers(len(CLASSES)))]
        side = int(rng.uniform(0.15, 0.5) * min(width, height))
        w = side if name != "triangle" else int(side * rng.uniform(0.75, 1.3))
        # LabelImg never writes a coordinate below 1, so neither does the generator.
        x0, y0 = max(1, int(rng.integers(0, width - w))), max(1, int(rng.integers(0, height - side)))
        box = (x0, y0, x0 + w, y0 + side)
        if _overlaps(box, placed):
            continue
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        outline = tuple(255 - c for c in colour)
        _draw_shape(draw, name, box, colour, outline)
        placed.append(box)
        boxes.append(Box(name, *box, truncated=labelimg_truncated(Box(name, *box), width, height)))
    return image, boxes


def make_dataset(out_dir, images: int = 200, seed: int = 0) -> Path:
    """Write `images/NNNNN.jpg` and `annotations/NNNNN.xml` (LabelImg's layout and XML)."""
    if images < 1:
        raise WebdetError(f"--images: {images}; at least 1 image is needed")
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "annotations").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(images):
        width, height = int(rng.integers(280, 361)), int(rng.integers(200, 281))
        image, boxes = make_image(rng, width, height)
        name = f"{i:05d}.jpg"
        path = out_dir / "images" / name
        image.save(path, "JPEG", quality=92)
        write_annotation(out_dir / "annotations" / f"{i:05d}.xml", folder="images", filename=name,
                         image_path=str(path.resolve()), width=width, height=height, boxes=boxes)
    return out_dir
