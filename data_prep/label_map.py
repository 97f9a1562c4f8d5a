"""`label_map.pbtxt` in the TF Object Detection API's text format, ids from 1."""
import re
from pathlib import Path

from webdet.errors import WebdetError

ITEM = re.compile(r"item\s*\{(.*?)\}", re.S)
FIELD = re.compile(r"""(\w+)\s*:\s*(?:"([^"]*)"|'([^']*)'|(\S+))""")


def read_label_map(path) -> dict[int, str]:
    """{id: name} from a label map; ids must be unique positive integers."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WebdetError(f"{path}: cannot read the label map ({exc.strerror})") from None
    labels: dict[int, str] = {}
    for number, body in enumerate(ITEM.findall(text), start=1):
        fields = {m[0]: next(v for v in m[1:] if v) for m in FIELD.findall(body)}
        name = fields.get("name") or fields.get("display_name")
        if "id" not in fields or not fields["id"].isdigit() or int(fields["id"]) < 1:
            raise WebdetError(f"{path}: item {number}: field 'id' must be an integer from 1")
        if not name:
            raise WebdetError(f"{path}: item {number}: field 'name' is missing")
        if int(fields["id"]) in labels:
            raise WebdetError(f"{path}: item {number}: id {fields['id']} is used twice")
        labels[int(fields["id"])] = name
    return labels


def format_label_map(names) -> str:
    return "".join(f"item {{\n  id: {i}\n  name: '{name}'\n}}\n" for i, name in enumerate(names, start=1))


def write_label_map(path, names) -> dict[int, str]:
    """Write ids 1..n in the given order and return the {id: name} map."""
    Path(path).write_text(format_label_map(names), encoding="utf-8")
    return {i: name for i, name in enumerate(names, start=1)}
