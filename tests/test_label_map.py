"""label_map.pbtxt as the TF Object Detection API writes and reads it: ids from 1, names quoted."""
import pytest

from webdet.data_prep.label_map import read_label_map, write_label_map
from webdet.errors import WebdetError


def test_written_in_the_od_api_layout_with_ids_from_one(tmp_path):
    path = tmp_path / "label_map.pbtxt"
    assert write_label_map(path, ["kangaroo", "wallaby"]) == {1: "kangaroo", 2: "wallaby"}
    assert path.read_text() == "item {\n  id: 1\n  name: 'kangaroo'\n}\nitem {\n  id: 2\n  name: 'wallaby'\n}\n"


def test_awkward_names_survive_a_round_trip(tmp_path):
    names = ["o'clock", 'say "cheese"', "back\\slash", "känguru 日本", "two words"]
    write_label_map(tmp_path / "m.pbtxt", names)
    assert read_label_map(tmp_path / "m.pbtxt") == dict(enumerate(names, start=1))


def test_reads_what_other_od_api_tools_write(tmp_path):
    path = tmp_path / "m.pbtxt"
    path.write_text("""# exported by another tool { braces in a comment }
item {
  name: "/m/01yrx"
  id: 3
  display_name: "cat"
  keypoints { id: 0 label: "nose" }
}
item { id: 1 name: 'dog' }  # one line
item {
  id: 2
  display_name: "bird"
}
""")
    assert read_label_map(path) == {3: "/m/01yrx", 1: "dog", 2: "bird"}


@pytest.mark.parametrize("text, message", [
    ("item { id: 0 name: 'a' }", "item 1: field 'id' must be an integer from 1"),
    ("item { name: 'a' }", "item 1: field 'id' must be an integer from 1"),
    ("item { id: 1 }", "item 1: field 'name' is missing"),
    ("item { id: 1 name: 'a' } item { id: 1 name: 'b' }", "item 2: id 1 is used twice"),
    ("item { id: 1 name: 'a' } item { id: 2 name: 'a' }", "item 2: name 'a' is used twice"),
    ("item { id: one name: 'a' }", "not a label map in the OD API text format"),
    ("item { id: 1 name: 'a'", "not a label map in the OD API text format"),
    ("", "no 'item"),
])
def test_bad_label_maps_name_the_file_and_the_item(tmp_path, text, message):
    path = tmp_path / "bad.pbtxt"
    path.write_text(text)
    with pytest.raises(WebdetError) as caught:
        read_label_map(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(WebdetError, match="no such label map file"):
        read_label_map(tmp_path / "absent.pbtxt")


def test_duplicate_names_are_refused_when_writing(tmp_path):
    with pytest.raises(WebdetError, match="unique"):
        write_label_map(tmp_path / "m.pbtxt", ["cat", "cat"])
