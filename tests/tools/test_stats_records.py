"""The image-record summary both framework bridges share, and the progress decision of the tools."""

import doctest

import pytest

from detbalance.stats import records
from detbalance.stats.progress import show_progress
from detbalance.stats.records import ImageRecord, summarize_records


def test_counts_ignored_boxes_issues_and_image_labels():
    recs = [
        ImageRecord("a", [(0, False, (0, 0, 5, 5)), (0, False, (1, 1, 4, 4)), (2, True, (0, 0, 3, 3))]),
        ImageRecord("b", []),
        ImageRecord("c", [(1, False, (0, 0, 0, 9)), (2, False, (2, 2, 8, 8))]),
    ]
    ds = summarize_records(["x", "y", "z"], iter(recs), num_images=3, source="toy")
    assert ds.stats.instance_counts == [2, 1, 1] and ds.stats.image_counts == [1, 1, 1]
    assert ds.stats.num_images == 3 and ds.ignored_counts == [0, 0, 1] and ds.source == "toy"
    assert [labels.tolist() for labels in ds.image_labels] == [[0, 2], [], [1, 2]]
    assert [(i.image, i.class_name, i.reason) for i in ds.issues] == [("c", "y", "zero-area")]
    with_ignored = summarize_records(["x", "y", "z"], recs, num_images=3, include_ignored=True)
    assert with_ignored.stats.instance_counts == [2, 1, 2]


def test_progress_lines_without_a_terminal(capsys):
    recs = [ImageRecord(str(i), [(0, False, (0, 0, 2, 2))]) for i in range(10)]
    summarize_records(["x"], recs, num_images=10, progress=True, desc="reading toy")
    err = capsys.readouterr().err
    assert "reading toy: 100% (10/10)" in err


def test_a_label_outside_the_classes_names_the_source():
    with pytest.raises(ValueError, match=r"toy: box label 3 is outside \[0, 2\)"):
        summarize_records(["x", "y"], [ImageRecord("a", [(3, False, (0, 0, 1, 1))])], num_images=1, source="toy")


@pytest.mark.parametrize(
    "mode, large, expected",
    [("always", False, True), ("never", True, False), ("auto", True, True), ("auto", False, False)],
)
def test_show_progress(mode, large, expected):
    assert show_progress(mode, large) is expected


def test_show_progress_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match=r"progress='sometimes'; expected one of \['auto', 'always', 'never'\]"):
        show_progress("sometimes", True)


def test_doctests_run():
    result = doctest.testmod(records)
    assert result.attempted >= 4 and result.failed == 0
