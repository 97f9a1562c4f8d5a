"""Finding LabelImg pairs: every XML file matched to its image, in any folder layout.

An XML file is matched to the image with the same stem (its own file name decides, not the
`<filename>` field, which older copies of popular datasets get wrong). XML and images may sit side
by side or in separate folders such as `images/` + `annotations/`. Every file found is accounted for:
paired, or skipped with the reason.
"""
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from webdet.data_prep.images import IMAGE_SUFFIXES
from webdet.data_prep.report import Report
from webdet.data_prep.voc import AnnotationError, Box, read_annotation
from webdet.errors import WebdetError


@dataclass
class ImageRecord:
    """One annotated image: where it is and its boxes (pixels of the image as stored once prepared)."""
    key: str                       # unique across sources: source folder + relative path
    source: str                    # the source folder as given
    filename: str                  # path relative to the source folder (POSIX), e.g. images/00001.jpg
    image_path: Path
    boxes: list[Box] = field(default_factory=list)
    annotated_size: tuple | None = None   # (width, height) from the XML, when present
    width: int = 0                 # set once the image is validated
    height: int = 0
    info: object = None            # images.ImageInfo, set once the image is validated


def _same_name(a: str, b: str) -> bool:
    return unicodedata.normalize("NFC", a) == unicodedata.normalize("NFC", b)


def find_images(source: Path) -> dict[str, list[Path]]:
    """Every image file under a source folder, by file stem."""
    index = defaultdict(list)
    for path in sorted(source.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            index[unicodedata.normalize("NFC", path.stem)].append(path)
    return index


def pick_image(xml: Path, named: str | None, candidates: list[Path], report: Report) -> Path | None:
    """The image an XML file annotates: same stem, preferring its own folder, then its `<filename>`."""
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    beside = [c for c in candidates if c.parent == xml.parent]
    if len(beside) == 1:
        return beside[0]
    pool = beside or candidates
    chosen = next((c for c in pool if named and _same_name(c.name, named)), pool[0])
    report.warn("duplicate_stem", xml, f"{len(pool)} images named {xml.stem}.*: "
                                       f"{', '.join(c.name for c in pool)}; using {chosen.name}")
    return chosen


def _check_filename_field(xml: Path, named: str | None, report: Report) -> None:
    if named and not _same_name(Path(named).stem, xml.stem):
        report.warn("filename_mismatch", xml, f"<filename> is {named!r}; the image is matched by the "
                                              f"XML's own name {xml.stem!r}")


def _pair(xml: Path, source: Path, images: dict, report: Report) -> ImageRecord | None:
    """Read one XML and find its image; None (reported) when the XML or its image is unusable."""
    report.images_read += 1
    try:
        ann = read_annotation(xml)
    except AnnotationError as exc:
        report.skip(exc.kind, xml, str(exc))
        return None
    report.boxes_read += len(ann.boxes) + len(ann.unusable)
    for kind, detail in ann.warnings:
        report.warn(kind, xml, detail)
    if ann.unusable:
        # The object is in the picture but cannot be placed: kept, the image would teach "no object here".
        report.drop_boxes(kind for kind, _ in ann.unusable)
        report.skip(ann.unusable[0][0], xml, "; ".join(detail for _, detail in ann.unusable)
                    + "; the image is not used (fix the XML to keep it)", boxes=len(ann.boxes))
        return None
    named = Path(ann.filename).name if ann.filename else None
    _check_filename_field(xml, named, report)
    image = pick_image(xml, named, images.get(unicodedata.normalize("NFC", xml.stem), []), report)
    if image is None:
        report.skip("image_missing", xml, f"no image named {xml.stem}.* (<filename> is {ann.filename!r})",
                    boxes=len(ann.boxes))
        return None
    relative = image.relative_to(source).as_posix()
    size = (ann.width, ann.height) if ann.width and ann.height else None
    return ImageRecord(f"{source}/{relative}", str(source), relative, image, ann.boxes, size)


def _account_unpaired(images: dict, used: set, paired_stems: set, xml_stems: set, report: Report) -> None:
    """Image files no XML claimed: counted as read and skipped, with the reason.

    An image whose XML was itself unusable is not counted again: that XML's skip already stands for it.
    """
    for stem, paths in images.items():
        for path in paths:
            if path in used:
                continue
            if stem in paired_stems:
                report.images_read += 1
                report.skip("duplicate_stem", path, f"another file named {stem}.* is the one annotated")
            elif stem not in xml_stems:
                report.images_read += 1
                report.skip("image_without_xml", path, "no annotation file")


def _one_xml_per_image(paired: list[tuple[Path, ImageRecord]], report: Report) -> list[ImageRecord]:
    """When several XML files claim one image, the one beside it (else the first) wins; the others are skipped."""
    claims: dict[Path, list[tuple[Path, ImageRecord]]] = {}
    for xml, record in paired:
        claims.setdefault(record.image_path, []).append((xml, record))
    winners = {}
    for image, claimants in claims.items():
        winner = next(((x, r) for x, r in claimants if x.parent == image.parent), claimants[0])
        winners[image] = winner[1]
        for xml, record in claimants:
            if record is not winner[1]:
                report.skip("duplicate_annotation", xml, f"{record.filename} is already annotated by {winner[0]}",
                            boxes=len(record.boxes))
    return [record for _, record in paired if winners[record.image_path] is record]


def scan_source(source: Path, report: Report) -> list[ImageRecord]:
    """Pair every XML with its image in one source folder."""
    if not source.is_dir():
        raise WebdetError(f"{source}: no such folder")
    xmls = sorted(source.rglob("*.xml"))
    if not xmls:
        raise WebdetError(f"{source}: no LabelImg annotations (*.xml) found; is this the right folder?")
    images = find_images(source)
    paired = [(xml, record) for xml in xmls for record in [_pair(xml, source, images, report)] if record]
    records = _one_xml_per_image(paired, report)
    _account_unpaired(images, {r.image_path for r in records},
                      {unicodedata.normalize("NFC", r.image_path.stem) for r in records},
                      {unicodedata.normalize("NFC", x.stem) for x in xmls}, report)
    return records


def scan_sources(sources, report: Report) -> list[ImageRecord]:
    """Pair XML and images in every source folder (several folders make one dataset)."""
    return [record for source in sources for record in scan_source(Path(source), report)]
