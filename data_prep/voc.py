"""Reading LabelImg (Pascal VOC) XML: one annotation per file, problems reported, never raised past the caller."""
import math
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

COORDS = ("xmin", "ymin", "xmax", "ymax")


class AnnotationError(Exception):
    """The XML cannot be used at all: `kind` says why (for the report), the message names the field."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class Box:
    """One labelled box in pixel corners, as LabelImg writes it."""
    name: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    difficult: int = 0
    truncated: int = 0


@dataclass
class Annotation:
    """What one XML file says, and every problem found in it."""
    xml_path: Path
    filename: str | None          # the <filename> field as written
    width: int | None             # the <size> the annotator saw (None when missing)
    height: int | None
    boxes: list[Box] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (kind, detail)
    unusable: list[tuple[str, str]] = field(default_factory=list)   # (kind, detail): <object>s that cannot be placed


def _text(node, tag: str):
    child = node.find(tag)
    return child.text.strip() if child is not None and child.text and child.text.strip() else None


def _int_flag(node, tag: str) -> int:
    value = _text(node, tag)
    return 1 if value in ("1", "true", "True") else 0


def _size(root, ann: Annotation) -> None:
    size = root.find("size")
    if size is None:
        ann.warnings.append(("missing_size", "no <size>; the image's own pixels are used"))
        return
    raw = {key: _text(size, key) for key in ("width", "height")}
    try:
        width, height = int(float(raw["width"])), int(float(raw["height"]))
    except (TypeError, ValueError, OverflowError):
        ann.warnings.append(("missing_size", f"<size> width {raw['width']!r}, height {raw['height']!r} are not "
                                             "numbers; the image's pixels are used"))
        return
    if width < 1 or height < 1:
        ann.warnings.append(("missing_size", f"<size> is {width}x{height}; the image's pixels are used"))
        return
    ann.width, ann.height = width, height


def _unusable(ann: Annotation, kind: str, detail: str) -> None:
    ann.unusable.append((kind, detail))


def _box(obj, index: int, ann: Annotation) -> Box | None:
    """One <object> as a Box in pixels, or None (recorded in `ann.unusable`) when a field is missing or bad."""
    name = _text(obj, "name")
    where = f"object {index}"
    if not name:
        return _unusable(ann, "missing_name", f"{where}: no <name>")
    bndbox = obj.find("bndbox")
    if bndbox is None:
        return _unusable(ann, "missing_bndbox", f"{where} ({name}): no <bndbox>")
    values = {}
    for key in COORDS:
        raw = _text(bndbox, key)
        try:
            values[key] = float(raw)
            if not math.isfinite(values[key]):
                raise ValueError(raw)
        except (TypeError, ValueError):
            return _unusable(ann, "bad_coordinate", f"{where} ({name}): <{key}> is {raw!r}, not a number")
    if any(not v.is_integer() for v in values.values()):
        ann.warnings.append(("float_coordinates", f"{where} ({name}): fractional pixel coordinates kept as is"))
    return Box(name, **values, difficult=_int_flag(obj, "difficult"), truncated=_int_flag(obj, "truncated"))


def read_annotation(xml_path) -> Annotation:
    """Parse one LabelImg XML file; raises AnnotationError only when nothing in it is usable."""
    xml_path = Path(xml_path)
    try:
        root = etree.parse(str(xml_path), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
    except (etree.XMLSyntaxError, OSError) as exc:
        raise AnnotationError("xml_unparseable", f"not well-formed XML ({str(exc).splitlines()[0]})") from None
    if root.tag != "annotation":
        raise AnnotationError("xml_not_voc", f"root element is <{root.tag}>, expected <annotation>")
    ann = Annotation(xml_path, _text(root, "filename"), None, None)
    _size(root, ann)
    for index, obj in enumerate(root.findall("object"), start=1):
        box = _box(obj, index, ann)
        if box:
            ann.boxes.append(box)
    return ann


def labelimg_truncated(box: Box, width: int, height: int) -> int:
    """1 when LabelImg would mark the box truncated: it touches the image border.

    LabelImg's own rule, reproduced so written XML matches what LabelImg saves: a side equal to the
    image size, or a minimum of 1 (LabelImg never writes coordinates below 1).
    """
    touches_y = int(box.ymax) == int(height) or int(box.ymin) == 1
    touches_x = int(box.xmax) == int(width) or int(box.xmin) == 1
    return int(touches_y or touches_x)


def write_annotation(path, *, folder: str, filename: str, image_path: str, width: int, height: int,
                     boxes, depth: int = 3) -> None:
    """Write XML the way LabelImg's Pascal VOC writer does (tab-indented, no declaration)."""
    root = etree.Element("annotation")
    etree.SubElement(root, "folder").text = folder
    etree.SubElement(root, "filename").text = filename
    etree.SubElement(root, "path").text = image_path
    source = etree.SubElement(root, "source")
    etree.SubElement(source, "database").text = "Unknown"
    size = etree.SubElement(root, "size")
    for tag, value in (("width", width), ("height", height), ("depth", depth)):
        etree.SubElement(size, tag).text = str(value)
    etree.SubElement(root, "segmented").text = "0"
    for box in boxes:
        obj = etree.SubElement(root, "object")
        etree.SubElement(obj, "name").text = box.name
        etree.SubElement(obj, "pose").text = "Unspecified"
        etree.SubElement(obj, "truncated").text = str(box.truncated)
        etree.SubElement(obj, "difficult").text = str(box.difficult)
        bnd = etree.SubElement(obj, "bndbox")
        for key in COORDS:
            value = float(getattr(box, key))
            etree.SubElement(bnd, key).text = str(int(value)) if value.is_integer() else str(value)
    text = etree.tostring(root, pretty_print=True, encoding="utf-8").replace(b"  ", b"\t")
    Path(path).write_bytes(text)
