"""Reading and writing LabelImg (Pascal VOC) XML: usable fields kept, every flaw named."""
import pytest

from webdet.data_prep.voc import AnnotationError, Box, labelimg_truncated, read_annotation, write_annotation

LABELIMG_XML = """<annotation>
\t<folder>photos</folder>
\t<filename>{filename}</filename>
\t<path>/home/user/photos/{filename}</path>
\t<source>
\t\t<database>Unknown</database>
\t</source>
{size}\t<segmented>0</segmented>
{objects}</annotation>
"""
SIZE = "\t<size>\n\t\t<width>{w}</width>\n\t\t<height>{h}</height>\n\t\t<depth>3</depth>\n\t</size>\n"
OBJECT = ("\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>{truncated}</truncated>\n"
          "\t\t<difficult>{difficult}</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{xmin}</xmin>\n\t\t\t<ymin>{ymin}</ymin>\n"
          "\t\t\t<xmax>{xmax}</xmax>\n\t\t\t<ymax>{ymax}</ymax>\n\t\t</bndbox>\n\t</object>\n")


def labelimg_text(objects=(), size=(640, 480), filename="cat.jpg") -> str:
    """XML laid out exactly as LabelImg saves it (tab indents, no declaration)."""
    size_block = SIZE.format(w=size[0], h=size[1]) if size else ""
    body = "".join(OBJECT.format(**{"truncated": 0, "difficult": 0, **o}) for o in objects)
    return LABELIMG_XML.format(filename=filename, size=size_block, objects=body)


def write(tmp_path, text, name="cat.xml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def cat(**overrides):
    return {"name": "cat", "xmin": 10, "ymin": 20, "xmax": 110, "ymax": 220, **overrides}


def test_reads_size_filename_boxes_and_flags(tmp_path):
    xml = write(tmp_path, labelimg_text([cat(), cat(name="dog", difficult=1, truncated=1)]))
    ann = read_annotation(xml)
    assert (ann.filename, ann.width, ann.height) == ("cat.jpg", 640, 480)
    assert ann.boxes == [Box("cat", 10, 20, 110, 220), Box("dog", 10, 20, 110, 220, difficult=1, truncated=1)]
    assert ann.warnings == [] and ann.unusable == []


def test_written_xml_is_byte_for_byte_what_labelimg_saves(tmp_path):
    expected = labelimg_text([cat(), cat(name="dog", xmin=300, xmax=640, truncated=1)])
    boxes = [Box("cat", 10, 20, 110, 220), Box("dog", 300, 20, 640, 220, truncated=1)]
    write_annotation(tmp_path / "out.xml", folder="photos", filename="cat.jpg", image_path="/home/user/photos/cat.jpg",
                     width=640, height=480, boxes=boxes)
    assert (tmp_path / "out.xml").read_text(encoding="utf-8") == expected


def test_xml_that_does_not_parse_is_an_annotation_error(tmp_path):
    xml = write(tmp_path, "<annotation><size><width>3</width>")
    with pytest.raises(AnnotationError, match="not well-formed XML") as caught:
        read_annotation(xml)
    assert caught.value.kind == "xml_unparseable"


def test_xml_of_another_kind_is_named(tmp_path):
    xml = write(tmp_path, "<project><name>build</name></project>")
    with pytest.raises(AnnotationError, match="<project>") as caught:
        read_annotation(xml)
    assert caught.value.kind == "xml_not_voc"


@pytest.mark.parametrize("size_block, said", [
    ("", "no <size>"),
    ("\t<size>\n\t\t<width>0</width>\n\t\t<height>0</height>\n\t</size>\n", "0x0"),
    ("\t<size>\n\t\t<width>wide</width>\n\t\t<height>480</height>\n\t</size>\n", "'wide'"),
])
def test_missing_or_unusable_size_is_a_warning_and_the_boxes_stay(tmp_path, size_block, said):
    text = labelimg_text([cat()], size=None).replace("\t<segmented>", size_block + "\t<segmented>")
    ann = read_annotation(write(tmp_path, text))
    assert ann.width is None and ann.height is None
    assert [kind for kind, _ in ann.warnings] == ["missing_size"] and said in ann.warnings[0][1]
    assert len(ann.boxes) == 1


def test_object_without_bndbox_or_name_is_unusable_and_named(tmp_path):
    text = labelimg_text([cat(), cat(name="dog"), cat(name="")])
    text = text.replace("<name>dog</name>", "<name>dog</name><!-- -->", 1)
    start = text.index("<!-- -->")
    bnd_start, bnd_end = text.index("<bndbox>", start), text.index("</bndbox>", start) + len("</bndbox>")
    text = text[:bnd_start] + text[bnd_end:]
    ann = read_annotation(write(tmp_path, text))
    assert [b.name for b in ann.boxes] == ["cat"]
    assert ann.unusable == [("missing_bndbox", "object 2 (dog): no <bndbox>"), ("missing_name", "object 3: no <name>")]


@pytest.mark.parametrize("value", ["fifty", "", "nan", "inf", "1e999"])
def test_non_numeric_coordinate_makes_the_object_unusable_naming_the_field(tmp_path, value):
    ann = read_annotation(write(tmp_path, labelimg_text([cat(), cat(name="dog", xmax=value)])))
    assert [b.name for b in ann.boxes] == ["cat"]
    [(kind, detail)] = ann.unusable
    assert kind == "bad_coordinate" and detail.startswith("object 2 (dog): <xmax> is") and "not a number" in detail


def test_float_coordinates_are_kept_and_reported(tmp_path):
    ann = read_annotation(write(tmp_path, labelimg_text([cat(xmin="10.5", ymax="220.25")])))
    assert ann.boxes == [Box("cat", 10.5, 20, 110, 220.25)]
    assert [kind for kind, _ in ann.warnings] == ["float_coordinates"]


def test_external_entities_are_not_expanded(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    text = (f'<!DOCTYPE annotation [<!ENTITY leak SYSTEM "file://{secret}">]>\n'
            + labelimg_text([cat(name="&leak;")]))
    ann = read_annotation(write(tmp_path, text))
    assert all("top secret" not in b.name for b in ann.boxes)


@pytest.mark.parametrize("corners, truncated", [
    ((10, 20, 110, 220), 0),
    ((1, 20, 110, 220), 1),      # LabelImg never writes 0: 1 is the left edge
    ((10, 20, 640, 220), 1),
    ((10, 1, 110, 220), 1),
    ((10, 20, 110, 480), 1),
])
def test_labelimg_truncated_flag_marks_boxes_touching_the_border(corners, truncated):
    assert labelimg_truncated(Box("cat", *corners), 640, 480) == truncated
