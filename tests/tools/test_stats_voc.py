"""Pascal VOC statistics: the BCCD reference counts, difficult boxes, splits, class order, errors."""

import pytest

from detbalance.stats import read_voc


def test_bccd_reference_counts(bccd_root):
    root = bccd_root
    ds = read_voc(root, classes=["RBC", "WBC", "Platelets"])
    s = ds.stats
    assert s.class_names == ["RBC", "WBC", "Platelets"]
    assert s.instance_counts == [4155, 372, 361]
    assert s.image_counts == [349, 358, 201]
    assert s.num_images == 364
    # the two zero-area RBC boxes are counted and reported, not dropped
    assert [(i.image, i.class_name, i.reason) for i in ds.issues] == [
        ("BloodImage_00338.jpg", "RBC", "zero-area"),
        ("BloodImage_00343.jpg", "RBC", "zero-area"),
    ]
    assert ds.issues[0].box_xyxy == (504.0, 337.0, 504.0, 337.0)
    train = read_voc(root, split="train", classes=["RBC", "WBC", "Platelets"])
    assert train.stats.num_images == 205 and sum(train.stats.instance_counts) < sum(s.instance_counts)


def _xml(name, objects):
    objs = "".join(
        f"<object><name>{cls}</name><difficult>{int(diff)}</difficult>"
        f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for cls, diff, b in objects
    )
    return f"<annotation><filename>{name}.jpg</filename>{objs}</annotation>"


@pytest.fixture
def voc(tmp_path):
    ann = tmp_path / "Annotations"
    ann.mkdir()
    (ann / "a.xml").write_text(
        _xml("a", [("dog", 0, (1, 1, 9, 9)), ("dog", 1, (2, 2, 8, 8)), ("cat", 0, (0, 0, 4, 4))])
    )
    (ann / "b.xml").write_text(_xml("b", [("cat", 0, (1, 1, 3, 3)), ("cat", 0, (5, 5, 5, 9))]))
    (ann / "c.xml").write_text(_xml("c", []))
    sets = tmp_path / "ImageSets" / "Main"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("a\nc\n")
    return tmp_path


def test_counts_difficult_split_and_order(voc):
    ds = read_voc(voc)
    assert ds.stats.class_names == ["cat", "dog"]  # default: sorted names
    assert ds.stats.instance_counts == [3, 1] and ds.stats.image_counts == [2, 1] and ds.stats.num_images == 3
    assert ds.ignored_counts == [0, 1]
    assert [str(i) for i in ds.issues] == ["zero-area box [5, 5, 5, 9] (x0, y0, x1, y1) of class 'cat' in b.jpg"]
    with_difficult = read_voc(voc, include_ignored=True, classes=["dog", "cat"])
    assert with_difficult.stats.instance_counts == [2, 3]
    train = read_voc(voc, split="train")
    assert train.stats.instance_counts == [1, 1] and train.stats.num_images == 2
    assert [x.tolist() for x in train.image_labels] == [[0, 1], []]


def test_errors(voc, tmp_path):
    with pytest.raises(ValueError, match=r"a.xml: unknown class 'dog'; expected one of \['cat', 'bird'\]"):
        read_voc(voc, classes=["cat", "bird"])
    (voc / "Annotations" / "d.xml").write_text("<annotation>\n<object><name>cat</name></annotation>")
    with pytest.raises(ValueError, match=r"d.xml: malformed xml at line 2 column \d+"):
        read_voc(voc)
    (voc / "Annotations" / "d.xml").write_text("<annotation><object><name>cat</name></object></annotation>")
    with pytest.raises(ValueError, match=r"d.xml <object> #1: <bndbox> is missing"):
        read_voc(voc)
    with pytest.raises(FileNotFoundError, match="no Annotations/ folder"):
        read_voc(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="val.txt does not exist"):
        read_voc(voc, split="val")
    empty = tmp_path / "empty"
    (empty / "Annotations").mkdir(parents=True)
    with pytest.raises(ValueError, match="is empty: it has no images"):
        read_voc(empty)


def test_split_ids_first_word_of_each_line_and_a_missing_split_names_the_file(tmp_path):
    from detbalance.stats.voc import voc_split_ids

    sets = tmp_path / "ImageSets" / "Main"
    sets.mkdir(parents=True)
    (sets / "trainval.txt").write_text("000001\n\n000002  1\n 000003 -1\n")
    assert voc_split_ids(tmp_path, "trainval") == ["000001", "000002", "000003"]
    with pytest.raises(
        FileNotFoundError,
        match=r"VOC split file .*test\.txt does not exist; expected "
        r"ImageSets/Main/test\.txt",
    ):
        voc_split_ids(tmp_path, "test")
