"""Weights file: round trip, atomic save, validating load with messages naming the path and the field."""

import json

import pytest

from detbalance.weights import VERSION, ClassStats, WeightsFile, load_weights, save_weights


def _wf(**changes):
    fields = dict(
        stats=ClassStats(["cat", "dog", "yak"], [50, 7, 2], [20, 5, 1], 30),
        scheme="inverse",
        params={"count": "instances", "power": 1.0},
        weights=[0.1, 0.7, 2.2],
        background_weight=0.5,
        groups=["c", "r", "r"],
    )
    fields.update(changes)
    return WeightsFile(**fields)


def test_round_trip(tmp_path):
    path = tmp_path / "w.json"
    wf = _wf()
    save_weights(path, wf)
    assert load_weights(path) == wf
    assert load_weights(path, num_classes=3).version == VERSION
    data = json.loads(path.read_text())
    assert data["format"] == "detbalance-weights" and data["stats"]["class_names"] == ["cat", "dog", "yak"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.json"]  # no temporary file left behind


def test_invalid_contents_are_not_written_and_old_file_survives(tmp_path):
    path = tmp_path / "w.json"
    save_weights(path, _wf())
    before = path.read_text()
    with pytest.raises(ValueError, match=r"w.json: field 'weights' has 2 entries, expected 3 \(one per class\)"):
        save_weights(path, _wf(weights=[1.0, 1.0]))
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.json"]


def test_num_classes_mismatch_names_both_numbers(tmp_path):
    path = tmp_path / "w.json"
    save_weights(path, _wf())
    with pytest.raises(ValueError, match=r"w.json: the weights file has 3 classes but the model has num_classes=80"):
        load_weights(path, num_classes=80)


def _write(tmp_path, mutate):
    path = tmp_path / "w.json"
    save_weights(path, _wf())
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("weights"), "field 'weights' is missing"),
        (lambda d: d["stats"].pop("num_images"), "field 'stats.num_images' is missing"),
        (lambda d: d.update(version=7), "field 'version' is 7, this detbalance reads version 1"),
        (lambda d: d.update(format="other"), "field 'format' must be 'detbalance-weights'"),
        (lambda d: d.update(scheme="magic"), "field 'scheme' unknown scheme 'magic'"),
        (lambda d: d.update(weights=[1.0, -1.0, 1.0]), "field 'weights' expected a list of finite numbers > 0"),
        (lambda d: d.update(groups=["r", "x", "f"]), "field 'groups' expected a list of"),
        (lambda d: d.update(groups=["r"]), "field 'groups' has 1 entries, expected 3"),
        (lambda d: d.update(background_weight=-2), "field 'background_weight' expected a finite number >= 0"),
        (lambda d: d["stats"].update(instance_counts=[1, 2]), "field 'stats.instance_counts' has 2 entries"),
        (lambda d: d["stats"].update(image_counts=[1, 2.5, 1]), "field 'stats.image_counts' expected a list of int"),
        (lambda d: d["stats"].update(image_counts=[31, 5, 1]), "class 'cat' is in 31 images, expected at most"),
        (lambda d: d["stats"].update(class_names=["a", "a", "b"]), "field 'stats.class_names' duplicate names"),
        (lambda d: d.update(params=[1]), "field 'params' expected an object"),
    ],
)
def test_load_names_path_and_field(tmp_path, mutate, message):
    path = _write(tmp_path, mutate)
    with pytest.raises(ValueError, match=message) as err:
        load_weights(path)
    assert str(path) in str(err.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json does not exist"):
        load_weights(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "format": "detbalance-weights",\n  "version": 1,,\n}')
    with pytest.raises(ValueError, match=r"bad.json: not valid JSON: .* at line 3 column 16"):
        load_weights(bad)


def test_atomic_writers_write_all_or_nothing(tmp_path):
    from detbalance.weights.file import write_bytes_atomic, write_text_atomic

    write_text_atomic(tmp_path / "a.txt", "é\nb\n")
    assert (tmp_path / "a.txt").read_bytes() == "é\nb\n".encode()
    write_bytes_atomic(tmp_path / "a.txt", b"\x00\x01")
    assert (tmp_path / "a.txt").read_bytes() == b"\x00\x01"
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "x").write_text("keep")
    with pytest.raises(OSError):  # replacing a non-empty folder fails: the temporary file goes, the folder stays
        write_bytes_atomic(tmp_path / "folder", b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "folder"]
