"""`label_map.pbtxt` in the TF Object Detection API's text format, ids from 1.

The file is parsed with protobuf's own text-format parser against the OD API's `StringIntLabelMap`
message (built here from its field list, since the OD API package itself is not a dependency), so
comments, either quote style and escapes are read exactly as the OD API reads them.
"""
from functools import lru_cache
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

from webdet.contract import LabelMap
from webdet.errors import WebdetError

_FIELD = descriptor_pb2.FieldDescriptorProto


@lru_cache(maxsize=1)
def _label_map_class():
    """The OD API's `StringIntLabelMap` message class (item: name=1, id=2, display_name=3)."""
    proto = descriptor_pb2.FileDescriptorProto(name="webdet_string_int_label_map.proto", package="webdet")
    item = proto.message_type.add(name="StringIntLabelMapItem")
    for name, number, kind in (("name", 1, _FIELD.TYPE_STRING), ("id", 2, _FIELD.TYPE_INT32),
                               ("display_name", 3, _FIELD.TYPE_STRING)):
        item.field.add(name=name, number=number, type=kind, label=_FIELD.LABEL_OPTIONAL)
    label_map = proto.message_type.add(name="StringIntLabelMap")
    label_map.field.add(name="item", number=1, type=_FIELD.TYPE_MESSAGE, label=_FIELD.LABEL_REPEATED,
                        type_name=".webdet.StringIntLabelMapItem")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("webdet.StringIntLabelMap"))


def parse_label_map(text: str, path="label map") -> LabelMap:
    """The label map (id → name) in label-map text; ids must be unique integers from 1 and every item needs a name."""
    message = _label_map_class()()
    try:
        # Other OD API fields (keypoints, frequency…) are allowed and ignored: webdet needs only id and name.
        text_format.Parse(text, message, allow_unknown_field=True)
    except text_format.ParseError as exc:
        raise WebdetError(f"{path}: not a label map in the OD API text format ({exc})") from None
    labels = LabelMap()
    for number, item in enumerate(message.item, start=1):
        name = item.name or item.display_name
        if not item.HasField("id") or item.id < 1:
            raise WebdetError(f"{path}: item {number}: field 'id' must be an integer from 1")
        if not name:
            raise WebdetError(f"{path}: item {number}: field 'name' is missing")
        if item.id in labels:
            raise WebdetError(f"{path}: item {number}: id {item.id} is used twice")
        if name in labels.values():
            raise WebdetError(f"{path}: item {number}: name {name!r} is used twice")
        labels[item.id] = name
    if not labels:
        raise WebdetError(f"{path}: no 'item {{ id: … name: … }}' entries")
    return labels


def read_label_map(path) -> LabelMap:
    """The label map (id → name) of a `label_map.pbtxt` file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WebdetError(f"{path}: no such label map file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WebdetError(f"{path}: cannot read the label map ({exc})") from None
    return parse_label_map(text, path)


def _quote(name: str) -> str:
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def format_label_map(names) -> str:
    """The text the OD API's examples use: `item { id: 1 name: 'kangaroo' }`, one block per class."""
    return "".join(f"item {{\n  id: {i}\n  name: {_quote(name)}\n}}\n" for i, name in enumerate(names, start=1))


def write_label_map(path, names) -> LabelMap:
    """Write ids 1..n in the given order and return that label map."""
    names = list(names)
    if len(set(names)) != len(names):
        raise WebdetError(f"{path}: class names must be unique, got {names}")
    Path(path).write_text(format_label_map(names), encoding="utf-8")
    return LabelMap(enumerate(names, start=1))
