"""COCO/LVIS json statistics: streamed parsing, counting, id mapping, and errors with positions."""

import json
import random

import numpy as np
import pytest

from detbalance.stats import jsonstream, read_coco
from detbalance.stats.jsonstream import iter_object


def _random_coco(seed, num_images=40):
    rng = random.Random(seed)
    cats = [{"id": cid, "name": f"c{cid}"} for cid in (2, 5, 11, 40, 90)]  # non-contiguous ids
    rng.shuffle(cats)  # listed out of id order
    images = [{"id": 1000 + i, "file_name": f"{i}.jpg"} for i in range(num_images)]
    anns = []
    for img in images:
        for _ in range(rng.choice([0, 1, 2, 4, 7])):
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img["id"],
                    "category_id": rng.choice(cats)["id"],
                    "bbox": [rng.uniform(0, 50), rng.uniform(0, 50), rng.uniform(1, 9), rng.uniform(1, 9)],
                    "iscrowd": int(rng.random() < 0.1),
                    "name": 'ünïcödé " ] } ,',
                }
            )
    return {"info": {"x": [1, {"y": "]"}]}, "images": images, "annotations": anns, "categories": cats}


def _expected(coco, include_ignored=False):
    """Independent count: plain loops over the loaded dict, label order = category ids sorted."""
    ids = sorted(c["id"] for c in coco["categories"])
    inst = {c: 0 for c in ids}
    imgs = {c: set() for c in ids}
    for a in coco["annotations"]:
        if a.get("iscrowd", 0) and not include_ignored:
            continue
        inst[a["category_id"]] += 1
        imgs[a["category_id"]].add(a["image_id"])
    return [inst[c] for c in ids], [len(imgs[c]) for c in ids]


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 22])
@pytest.mark.parametrize("indent", [None, 2])
def test_streamed_counts_equal_plain_loop(tmp_path, monkeypatch, chunk, indent):
    monkeypatch.setattr(jsonstream, "_CHUNK", chunk)  # element boundaries fall at every possible buffer offset
    coco = _random_coco(seed=chunk)
    path = tmp_path / "a.json"
    path.write_text(json.dumps(coco, indent=indent, ensure_ascii=False), encoding="utf-8")
    for include in (False, True):
        ds = read_coco(path, include_ignored=include)
        inst, imgs = _expected(coco, include)
        assert ds.stats.class_names == [f"c{c}" for c in (2, 5, 11, 40, 90)]
        assert ds.stats.instance_counts == inst and ds.stats.image_counts == imgs
        assert ds.stats.num_images == 40
    crowd = sum(a["iscrowd"] for a in coco["annotations"])
    assert crowd > 0 and sum(ds.ignored_counts) == crowd


def test_iter_object_matches_json_load(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonstream, "_CHUNK", 5)
    doc = {"a": 1.5e300, "big": [[1, 2], {"k": "v\\n"}, "s", 12345678901234567890, None, True], "z": -0.0, "e": []}
    path = tmp_path / "d.json"
    path.write_text(" \n" + json.dumps(doc, indent=1) + "\n\n")
    got = {k: (list(v) if k in ("big", "e") else v) for k, v in iter_object(path, ("big", "e"))}
    assert got == doc


@pytest.mark.parametrize(
    "text",
    [
        '{"images": [{"id": 1}], "annotations": [{"id": 1,, "x": 2}], "categories": []}',
        '{\n "images": [\n  {"id": 1}\n  {"id": 2}\n ]\n}',
        '{"images": [1, 2',
        '{"images": [1, 2]} trailing',
        '{"a": tru}',
        '{\n\n  "a": "unterminated\n}',
        '{"a" 1}',
        "",
    ],
)
def test_malformed_json_reports_the_position_json_load_reports(tmp_path, monkeypatch, text):
    monkeypatch.setattr(jsonstream, "_CHUNK", 4)
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(json.JSONDecodeError) as ref:
        json.loads(text)
    with pytest.raises(ValueError, match="malformed JSON") as err:
        for _, value in iter_object(path, ("images", "annotations")):
            list(value) if not isinstance(value, (int, str, dict)) else None
    e = ref.value
    assert f"line {e.lineno} column {e.colno} (char {e.pos})" in str(err.value)
    assert str(path) in str(err.value)


def test_top_level_must_be_an_object(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"Expecting '\{' \(a JSON object\): line 1 column 1 \(char 0\)"):
        read_coco(path)


def test_label_order_follows_classes(tmp_path):
    coco = _random_coco(seed=3)
    path = tmp_path / "a.json"
    path.write_text(json.dumps(coco))
    default = read_coco(path)
    order = ["c90", "c2", "c40", "c5", "c11"]
    ds = read_coco(path, classes=order)
    assert ds.stats.class_names == order
    index = [default.stats.class_names.index(n) for n in order]
    assert ds.stats.instance_counts == [default.stats.instance_counts[i] for i in index]
    assert ds.stats.image_counts == [default.stats.image_counts[i] for i in index]
    with pytest.raises(ValueError, match=r"missing from classes: \['c11'\], not in the file: \['dog'\]"):
        read_coco(path, classes=["c90", "c2", "c40", "c5", "dog"])


def test_zero_area_boxes_are_counted_and_reported(tmp_path):
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        "categories": [{"id": 4, "name": "cell"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 4, "bbox": [3, 4, 0, 5]},
            {"id": 2, "image_id": 2, "category_id": 4, "bbox": [3, 4, 2, 2]},
        ],
    }
    path = tmp_path / "a.json"
    path.write_text(json.dumps(coco))
    ds = read_coco(path)
    assert ds.stats.instance_counts == [2] and ds.stats.image_counts == [2]
    assert [str(i) for i in ds.issues] == ["zero-area box [3, 4, 3, 9] (x0, y0, x1, y1) of class 'cell' in a.jpg"]
    assert [list(x) for x in ds.image_labels] == [[0], [0]]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda d: d["annotations"][1].update(category_id=77),
            r"annotation id 2 has category_id 77, which is not declared in 'categories' \(declared: 1, 3\)",
        ),
        (lambda d: d["annotations"][0].update(image_id=9), "annotation id 1 has image_id 9, which is not declared"),
        (lambda d: d.pop("categories"), r"top-level keys \['categories'\] are missing"),
        (lambda d: d.update(annotations=[]), "is empty: its 2 images have no boxes"),
        (lambda d: d.update(images=[], annotations=[]), "is empty: it has no images"),
        (lambda d: d["annotations"][0].pop("bbox"), r"annotations\[0\] has no 'bbox'"),
        (lambda d: d["categories"].append({"id": 3, "name": "x"}), "category id 3 is declared twice"),
        (lambda d: d["images"].append({"id": 1}), "declares an image id twice"),
        (lambda d: d["annotations"][0].update(iscrowd=1), "have no boxes that are not crowd/ignored"),
    ],
)
def test_bad_input_raises_clear_errors(tmp_path, mutate, message):
    coco = {
        "images": [{"id": 1}, {"id": 2}],
        "categories": [{"id": 1, "name": "a"}, {"id": 3, "name": "b"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]}],
    }
    coco["annotations"].append({"id": 2, "image_id": 2, "category_id": 3, "bbox": [0, 0, 2, 2], "iscrowd": 1})
    mutate(coco)
    path = tmp_path / "a.json"
    path.write_text(json.dumps(coco))
    with pytest.raises(ValueError, match=message):
        read_coco(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.json does not exist"):
        read_coco(tmp_path / "nothere.json")


def test_lvis_style_file_gives_groups(tmp_path, lvis_v1_stats):
    """A small LVIS-format file built from the published counts of 40 categories gives those counts back."""
    from detbalance.weights import frequency_groups

    cats = [c for c in json.loads(lvis_v1_stats.read_text())["categories"] if c["image_count"] <= 120][:40]
    rng = np.random.default_rng(0)
    anns = []
    for c in cats:
        imgs = rng.choice(150, size=c["image_count"], replace=False)
        per = 1 + rng.multinomial(c["instance_count"] - c["image_count"], np.ones(len(imgs)) / len(imgs))
        for img, n in zip(imgs.tolist(), per.tolist()):
            anns += [{"id": len(anns) + 1, "image_id": img + 1, "category_id": c["id"], "bbox": [1, 1, 5, 5]}] * n
    path = tmp_path / "lvis.json"
    path.write_text(
        json.dumps({"annotations": anns, "images": [{"id": i + 1} for i in range(150)], "categories": cats})
    )
    ds = read_coco(path)
    cats = sorted(cats, key=lambda c: c["id"])
    assert ds.stats.instance_counts == [c["instance_count"] for c in cats]
    assert ds.stats.image_counts == [c["image_count"] for c in cats]
    assert frequency_groups(ds.stats.image_counts) == [c["frequency"] for c in cats]
