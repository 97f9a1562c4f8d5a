"""Making annotated boxes fit the real image: clip what sticks out, drop what is empty or outside."""
from dataclasses import dataclass, field, replace

from webdet.data_prep.voc import Box


@dataclass
class FittedBoxes:
    """The boxes kept (inside the image), what was noticed, and the reason for each box dropped."""
    kept: list[Box] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (kind, detail)
    dropped: list[str] = field(default_factory=list)               # one kind per dropped box


def _ordered(box: Box) -> Box:
    return replace(box, xmin=min(box.xmin, box.xmax), xmax=max(box.xmin, box.xmax),
                   ymin=min(box.ymin, box.ymax), ymax=max(box.ymin, box.ymax))


def _corners(box: Box) -> str:
    return f"({box.xmin:g},{box.ymin:g})-({box.xmax:g},{box.ymax:g})"


def fit_boxes(boxes: list[Box], width: int, height: int) -> FittedBoxes:
    """Clip boxes to a `width` x `height` image; drop zero-area ones and ones wholly outside (all reported)."""
    fitted = FittedBoxes()
    for index, box in enumerate(boxes, start=1):
        where = f"box {index} ({box.name})"
        if box.xmin > box.xmax or box.ymin > box.ymax:
            fitted.warnings.append(("box_swapped_corners", f"{where}: {_corners(box)} has min above max; reordered"))
            box = _ordered(box)
        clipped = replace(box, xmin=max(0.0, box.xmin), ymin=max(0.0, box.ymin),
                          xmax=min(float(width), box.xmax), ymax=min(float(height), box.ymax))
        if clipped.xmax <= clipped.xmin or clipped.ymax <= clipped.ymin:
            kind = "box_zero_area" if box.xmax <= box.xmin or box.ymax <= box.ymin else "box_outside_image"
            fitted.warnings.append((kind, f"{where}: {_corners(box)} in a {width}x{height} image; dropped"))
            fitted.dropped.append(kind)
            continue
        if clipped != box:
            fitted.warnings.append(("box_clipped", f"{where}: {_corners(box)} clipped to the {width}x{height} image"))
        fitted.kept.append(clipped)
    return fitted
