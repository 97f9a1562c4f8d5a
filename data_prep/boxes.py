"""Making annotated boxes fit the real image: clip what sticks out, drop what is empty or outside."""
from dataclasses import replace

from data_prep.voc import Box


def clean_boxes(boxes: list[Box], width: int, height: int):
    """Return (kept boxes, warnings); warnings are (kind, detail) pairs for the report."""
    kept, warns = [], []
    for index, box in enumerate(boxes, start=1):
        where = f"box {index} ({box.name})"
        if box.xmin > box.xmax or box.ymin > box.ymax:
            box = replace(box, xmin=min(box.xmin, box.xmax), xmax=max(box.xmin, box.xmax),
                          ymin=min(box.ymin, box.ymax), ymax=max(box.ymin, box.ymax))
            warns.append(("box_swapped_corners", f"{where}: min and max were swapped; reordered"))
        clipped = replace(box, xmin=max(0.0, box.xmin), ymin=max(0.0, box.ymin),
                          xmax=min(float(width), box.xmax), ymax=min(float(height), box.ymax))
        if clipped.xmax <= clipped.xmin or clipped.ymax <= clipped.ymin:
            kind = "box_zero_area" if box.xmax <= box.xmin or box.ymax <= box.ymin else "box_outside_image"
            warns.append((kind, f"{where}: ({box.xmin:g},{box.ymin:g})-({box.xmax:g},{box.ymax:g}) "
                                f"in a {width}x{height} image; dropped"))
            continue
        if clipped != box:
            warns.append(("box_clipped", f"{where}: ({box.xmin:g},{box.ymin:g})-({box.xmax:g},{box.ymax:g}) "
                                         f"clipped to the {width}x{height} image"))
        kept.append(clipped)
    return kept, warns
