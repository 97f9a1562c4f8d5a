"""The printed summary of a prepare report: counts that add up, then problems grouped by kind with files."""

MAX_FILES_SHOWN = 5


def _group(title: str, groups: dict) -> list[str]:
    lines = []
    for kind, items in groups.items():
        lines.append(f"  {title} {kind}: {len(items)}")
        lines.extend(f"    {item}" for item in items[:MAX_FILES_SHOWN])
        if len(items) > MAX_FILES_SHOWN:
            lines.append(f"    … and {len(items) - MAX_FILES_SHOWN} more (the JSON report lists all)")
    return lines


def _counted(counts: dict) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in counts.items())


def format_summary(report: dict) -> str:
    """Images and boxes read = written + skipped/dropped, each split with its classes, then every problem."""
    images, boxes = report["images"], report["boxes"]
    lines = [f"Images: {images['read']} read = {images['written']} written + {sum(images['skipped'].values())} skipped"
             + (f" ({_counted(images['skipped'])})" if images["skipped"] else ""),
             f"Boxes:  {boxes['read']} read = {boxes['written']} written + {sum(boxes['dropped'].values())} dropped"
             + (f" ({_counted(boxes['dropped'])})" if boxes["dropped"] else "")]
    for split, s in report["splits"].items():
        classes = _counted(s["classes"]) or "no objects"
        lines.append(f"  {split:5s}: {s['images']} images ({s['negatives']} without objects), "
                     f"{s['boxes']} boxes: {classes}")
    if report.get("reencoded") and report["shards_per_split"]:
        lines.append(f"Re-encoded as baseline RGB JPEG: {sum(report['reencoded'].values())} "
                     f"({_counted(report['reencoded'])}); the others are stored byte for byte")
    lines.append("Label map: " + (", ".join(f"{i} {n}" for i, n in report["label_map"].items()) or "(no classes)"))
    lines += _group("skipped", report["skipped"])
    lines += _group("warning", report["warnings"])
    written = f"{report['shards_per_split']} TFRecord shard(s) per split" if report["shards_per_split"] else "CSVs only"
    lines.append(f"Wrote {report['out_dir']} ({written}) in {report['seconds']['total']:.1f} s")
    return "\n".join(lines)
