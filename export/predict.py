"""`webdet predict`: run an exported model on image files; annotated copies and JSON come out.

A file that is not an image (or is corrupt) gets a one-line error and the others go on; the summary
says how many were read, detected and skipped.
"""
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from webdet.export.detector import load_detector

COLOURS = ("#ff7f0e", "#1f77b4", "#d62728", "#9467bd", "#e377c2", "#8c564b", "#17becf")


def read_image(path: Path) -> np.ndarray:
    """RGB pixels as a viewer shows them (EXIF orientation applied, as phone photos need)."""
    with Image.open(path) as image:
        image.load()
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def draw(image: np.ndarray, detections: list[dict]) -> Image.Image:
    """A copy of the image with each detection's box and "label score" drawn on it."""
    canvas = Image.fromarray(image)
    pen = ImageDraw.Draw(canvas)
    for d in detections:
        colour = COLOURS[(d["label_id"] - 1) % len(COLOURS)]
        pen.rectangle(d["box"], outline=colour, width=max(2, canvas.width // 200))
        text = f"{d['label']} {d['score']:.2f}"
        x, y = d["box"][0], max(0, d["box"][1] - 12)
        pen.rectangle(pen.textbbox((x, y), text), fill=colour)
        pen.text((x, y), text, fill="white")
    return canvas


def annotated_name(path: Path, used: set) -> str:
    """`photo.png` for photo.jpg; `photo-2.png` when another input already took that name."""
    name, n = f"{path.stem}.png", 1
    while name in used:
        n += 1
        name = f"{path.stem}-{n}.png"
    used.add(name)
    return name


def predict(model_dir, images, out_dir, score_threshold=None, log=print) -> dict:
    """Detect objects in each image file; write annotated PNGs and predictions.json into `out_dir`.

    Returns the summary: how many files were read, predicted and skipped, and why each was skipped.
    """
    detector = load_detector(model_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results, skipped, used = {}, {}, set()
    for name in images:
        path = Path(name)
        try:
            pixels = read_image(path)
        except FileNotFoundError:
            skipped[str(path)] = "no such file"
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            skipped[str(path)] = f"not a readable image ({type(exc).__name__})"
        else:
            detections = detector.detect(pixels, score_threshold)
            draw(pixels, detections).save(out_dir / annotated_name(path, used))
            results[str(path)] = detections
            log(f"{path}: {len(detections)} detection(s): "
                + ", ".join(f"{d['label']} {d['score']:.2f}" for d in detections))
            continue
        log(f"{path}: error: {skipped[str(path)]}")
    (out_dir / "predictions.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    summary = {"read": len(images), "predicted": len(results), "skipped": len(skipped), "errors": skipped}
    log(f"{len(images)} file(s): {len(results)} predicted, {len(skipped)} skipped; wrote {out_dir}")
    return summary
