"""The printed summary of a prepare report: counts that add up, then warnings grouped by kind."""

MAX_FILES_SHOWN = 5


def _group(title: str, groups: dict) -> list[str]:
    lines = []
    for kind, items in groups.items():
        lines.append(f"  {title} {kind}: {len(items)}")
        lines.extend(f"    {item}" for item in items[:MAX_FILES_SHOWN])
        if len(items) > MAX_FILES_SHOWN:
            lines.append(f"    … and {len(items) - MAX_FILES_SHOWN} more (prepare_report.json lists all)")
    return lines


def format_summary(report: dict) -> str:
    images, boxes = report["images"], report["boxes"]
    skipped = sum(images["skipped"].values())
    dropped = sum(boxes["dropped"].values())
    lines = [f"Images: {images['read']} read = {images['written']} written + {skipped} skipped",
             f"Boxes:  {boxes['read']} read = {boxes['written']} written + {dropped} dropped"]
    for split in ("train", "test"):
        s = report["splits"][split]
        classes = ", ".join(f"{k} {v}" for k, v in s["classes"].items()) or "none"
        lines.append(f"  {split:5s}: {s['images']} images ({s['negatives']} without objects), {s['boxes']} boxes: {classes}")
    lines.append("Label map: " + ", ".join(f"{i} {n}" for i, n in report["label_map"].items()))
    lines += _group("skipped", report["skipped"])
    if boxes["dropped"]:
        lines.append("  boxes dropped: " + ", ".join(f"{k} {v}" for k, v in boxes["dropped"].items()))
    lines += _group("warning", report["warnings"])
    lines.append(f"Wrote {report['out_dir']} ({report['shards_per_split']} shard(s) per split) "
                 f"in {report['seconds']['total']:.1f} s")
    return "\n".join(lines)
