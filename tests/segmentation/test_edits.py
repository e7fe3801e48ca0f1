"""Tests of nuclei_core.segmentation.edits (editing label images by hand) and
nuclei_core.segmentation.edit_history (undo and redo) on generated data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi
from skimage.morphology import disk
from support import assert_one_line_naming, disc

from nuclei_core.errors import EditError, InputError, InputTypeError
from nuclei_core.segmentation.edit_history import EditHistory
from nuclei_core.segmentation.edits import (
    add_nucleus,
    delete_nuclei,
    erase,
    label_at,
    merge_nuclei,
    paint,
    split_nucleus,
)

SHAPE = (40, 70)


# --------------------------------------------------------------------------------------------
# Generated data and checks
# --------------------------------------------------------------------------------------------


def two_discs(dtype=np.int32):
    """Nucleus 1 (disc of radius 10 at (20, 18)) and nucleus 2 (radius 10 at (20, 50))."""
    labels = np.zeros(SHAPE, dtype=dtype)
    labels[disc(SHAPE, (20, 18), 10)] = 1
    labels[disc(SHAPE, (20, 50), 10)] = 2
    return labels


def three_squares(dtype=np.int32):
    """Nuclei 1, 2, 3: 6 x 6 squares in a row, 4 pixels apart."""
    labels = np.zeros((10, 40), dtype=dtype)
    for number, start in enumerate((2, 12, 22), start=1):
        labels[2:8, start : start + 6] = number
    return labels


def assert_numbered(labels, dtype):
    """Same dtype; nuclei numbered 1..n without gaps."""
    assert labels.dtype == dtype
    values = np.unique(labels)
    nuclei = values[values > 0]
    assert nuclei.tolist() == list(range(1, nuclei.size + 1))


def nucleus_count(labels):
    return int(np.count_nonzero(np.unique(labels)))


def components(mask):
    """Number of 4-connected components of a boolean mask."""
    return ndi.label(mask)[1]


# --------------------------------------------------------------------------------------------
# label_at
# --------------------------------------------------------------------------------------------


def test_label_at_gives_the_nucleus_under_the_rounded_point_and_0_elsewhere():
    labels = two_discs()
    assert label_at(labels, (20, 18)) == 1
    assert label_at(labels, np.array([20.4, 49.6])) == 2
    assert label_at(labels, (1, 1)) == 0
    assert label_at(labels, (-3, 10)) == 0
    assert label_at(labels, (20, 70)) == 0
    edge = np.array([[0, 5]])
    assert label_at(edge, (0, 0.49)) == 0
    assert label_at(edge, (0, 0.5)) == 5


@pytest.mark.parametrize(
    ("point", "error"),
    [
        ((1, 2, 3), InputError),
        ([[1, 2]], InputError),
        ((np.nan, 1), InputError),
        ("ab", InputTypeError),
    ],
)
def test_label_at_refuses_a_bad_point_naming_it(point, error):
    with pytest.raises(error) as raised:
        label_at(two_discs(), point)
    assert_one_line_naming(raised, "point")


# --------------------------------------------------------------------------------------------
# delete
# --------------------------------------------------------------------------------------------


def test_delete_removes_the_nuclei_and_renumbers_keeping_the_ids_that_fit():
    labels = three_squares(np.uint16)
    out = delete_nuclei(labels, [1])
    assert_numbered(out, np.uint16)
    assert np.all(out[labels == 1] == 0)
    assert np.all(out[labels == 2] == 2)  # kept its id
    assert np.all(out[labels == 3] == 1)  # the highest id moved into the freed one
    assert np.array_equal(labels, three_squares(np.uint16))  # input untouched


def test_delete_several_ignores_0_and_unknown_ids():
    labels = three_squares()
    out = delete_nuclei(labels, {0, 2, 3, 99})
    assert np.array_equal(out, np.where(labels == 1, 1, 0).astype(np.int32))
    assert np.array_equal(delete_nuclei(labels, []), labels)
    assert delete_nuclei(labels, []) is not labels


@pytest.mark.parametrize(
    ("ids", "error"),
    [("12", InputTypeError), (3, InputTypeError), ([-1], InputError), ([1.5], InputTypeError)],
)
def test_delete_refuses_bad_ids_naming_them(ids, error):
    with pytest.raises(error) as raised:
        delete_nuclei(three_squares(), ids)
    assert_one_line_naming(raised, "ids")


def test_an_image_not_numbered_1_to_n_comes_back_numbered():
    labels = np.zeros((4, 4), np.int64)
    labels[0, 0], labels[1, 1], labels[3, 3] = 7, 10**12, 3
    out = delete_nuclei(labels, [])
    assert_numbered(out, np.int64)
    assert nucleus_count(out) == 3
    assert out[3, 3] < out[0, 0] < out[1, 1]


# --------------------------------------------------------------------------------------------
# add
# --------------------------------------------------------------------------------------------


def test_add_takes_the_background_inside_the_outline_and_keeps_existing_nuclei():
    labels = two_discs(np.uint8)
    outline = [[2, 10], [2, 60], [12, 60], [12, 10]]  # overlaps the tops of both discs
    out = add_nucleus(labels, outline)
    assert_numbered(out, np.uint8)
    inside = np.zeros(SHAPE, bool)
    inside[2:13, 10:61] = True
    assert np.array_equal(out == 3, inside & (labels == 0))
    assert np.array_equal(out[out != 3], labels[out != 3])
    assert np.array_equal(labels, two_discs(np.uint8))


def test_add_with_a_freehand_outline_gets_the_pixels_on_it_too():
    theta = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    outline = np.c_[20 + 8 * np.sin(theta), 35 + 8 * np.cos(theta)]
    out = add_nucleus(np.zeros(SHAPE, np.int32), outline)
    assert np.all(out[disc(SHAPE, (20, 35), 7.5)] == 1)
    assert not np.any(out[~disc(SHAPE, (20, 35), 8 + np.sqrt(0.5))])  # rounding: half a diagonal
    assert np.all(out[tuple(np.floor(outline + 0.5).astype(int).T)] == 1)


def test_an_outline_across_the_image_border_is_clipped():
    out = add_nucleus(two_discs(), [[-10, -10], [-10, 5], [5, 5], [5, -10]])
    expected = np.zeros(SHAPE, bool)
    expected[:6, :6] = True
    assert np.array_equal(out == 3, expected)
    assert_numbered(out, np.int32)


def test_an_outline_over_existing_nuclei_only_or_outside_the_image_is_an_edit_error():
    labels = two_discs()
    with pytest.raises(EditError, match="no background pixel"):
        add_nucleus(labels, [[17, 15], [17, 21], [23, 21], [23, 15]])
    with pytest.raises(EditError, match="outside the image"):
        add_nucleus(labels, [[-20, -20], [-20, -5], [-5, -5]])


@pytest.mark.parametrize(
    "outline",
    [[[1, 1], [5, 5]], [[1, 1, 1]], [[1, 1], [2, np.inf], [3, 3]], [[1, 1], [1, 9000], [5, 5]]],
)
def test_add_refuses_a_bad_outline_naming_it(outline):
    with pytest.raises(InputError) as raised:
        add_nucleus(two_discs(), outline)
    assert_one_line_naming(raised, "outline")


def test_add_to_an_image_whose_dtype_is_full_is_an_edit_error():
    full = np.arange(256, dtype=np.uint8).reshape(16, 16)  # nuclei 1..255, background at (0, 0)
    with pytest.raises(EditError, match="uint8"):
        add_nucleus(full, [[0, 0], [0, 1], [1, 1]])
    with pytest.raises(EditError, match="uint8"):
        paint(full, [[0, 0]], 0, 0)


# --------------------------------------------------------------------------------------------
# split
# --------------------------------------------------------------------------------------------


def test_split_cuts_the_nucleus_along_the_line_into_two():
    labels = np.zeros((20, 30), np.int16)
    labels[5:15, 5:25] = 1
    out = split_nucleus(labels, [[0, 15], [19, 15]])
    assert_numbered(out, np.int16)
    assert np.all(out[5:15, 5:15] == 1) and np.all(out[5:15, 16:25] == 2)
    assert set(np.unique(out[5:15, 15])) <= {1, 2}  # the line's pixels go to a part
    assert np.array_equal(out > 0, labels > 0)


def test_a_diagonal_polyline_splits_into_four_connected_parts():
    labels = two_discs()
    out = split_nucleus(labels, [[8, 6], [20, 18], [32, 30]])
    assert nucleus_count(out) == 3
    assert np.array_equal(out > 0, labels > 0)
    for number in (1, 3):
        assert components(out == number) == 1
    assert np.array_equal(out == 2, labels == 2)


def test_a_line_crossing_two_nuclei_splits_both():
    out = split_nucleus(two_discs(), [[20, 0], [20, 69]])
    assert nucleus_count(out) == 4
    assert_numbered(out, np.int32)


def test_a_line_only_touching_an_edge_leaves_that_nucleus_whole():
    labels = two_discs()
    out = split_nucleus(labels, [[20, 0], [20, 45]])  # across nucleus 1, into nucleus 2 only
    assert nucleus_count(out) == 3
    assert np.array_equal(out == 2, labels == 2)
    with pytest.raises(EditError, match="cuts no nucleus in two"):
        split_nucleus(labels, [[20, 0], [20, 15]])  # into nucleus 1 and stops inside


def test_a_line_that_misses_every_nucleus_is_an_edit_error():
    with pytest.raises(EditError, match="crosses no nucleus") as raised:
        split_nucleus(two_discs(), [[2, 2], [2, 60]])
    assert "\n" not in str(raised.value)


def test_a_line_grazing_a_corner_does_not_split_off_a_sliver():
    labels = np.zeros((20, 20), np.int32)
    labels[5:15, 5:15] = 1
    with pytest.raises(EditError):
        split_nucleus(labels, [[4, 8], [8, 4]])  # cuts off a corner of 3 pixels
    assert np.array_equal(labels[5:15, 5:15], np.ones((10, 10), np.int32))


def test_split_refuses_a_single_point():
    with pytest.raises(InputError) as raised:
        split_nucleus(two_discs(), [[20, 18]])
    assert_one_line_naming(raised, "line")


# --------------------------------------------------------------------------------------------
# merge
# --------------------------------------------------------------------------------------------


def test_merge_joins_nuclei_and_fills_the_watershed_line_between_them():
    labels = np.zeros((20, 30), np.uint32)
    labels[5:15, 5:14] = 1
    labels[5:15, 15:25] = 2  # column 14 is a watershed line
    labels[0, 0] = 3
    out = merge_nuclei(labels, [2, 1])
    assert_numbered(out, np.uint32)
    expected = np.zeros((20, 30), bool)
    expected[5:15, 5:25] = True
    expected[[4, 15], 14] = True  # the ends of the line are within 2 pixels of both too
    assert np.array_equal(out == 1, expected)
    assert out[0, 0] == 2


def test_merge_fills_no_wide_gap_and_nothing_around_a_single_nucleus():
    labels = three_squares()
    out = merge_nuclei(labels, [1, 2])  # 4 pixels apart: too wide to fill
    assert np.array_equal(out == 1, (labels == 1) | (labels == 2))
    assert np.array_equal(out == 2, labels == 3)


def test_merge_of_one_nucleus_is_an_unchanged_copy():
    labels = three_squares(np.uint8)
    for ids in ([2], [2, 2], [], [0, 2], [2, 40]):
        out = merge_nuclei(labels, ids)
        assert np.array_equal(out, labels) and out.dtype == np.uint8 and out is not labels


def test_merge_of_three_nuclei():
    out = merge_nuclei(three_squares(), [1, 2, 3])
    assert nucleus_count(out) == 1 and np.count_nonzero(out) == 3 * 36


# --------------------------------------------------------------------------------------------
# paint and erase
# --------------------------------------------------------------------------------------------


def test_paint_with_label_0_makes_a_new_nucleus_of_a_disk_brush():
    labels = two_discs()
    out = paint(labels, [[5, 34]], 3, 0)
    expected = np.zeros(SHAPE, bool)
    expected[2:9, 31:38] = disk(3).astype(bool)
    assert np.array_equal(out == 3, expected)
    assert np.array_equal(out[~expected], labels[~expected])


def test_paint_grows_one_nucleus_over_background_only():
    labels = two_discs()
    out = paint(labels, [[20, 18], [20, 50]], 2, 1)  # from nucleus 1 through nucleus 2
    assert np.array_equal(out == 2, labels == 2)
    assert np.all(out[20, 18:40] == 1) and np.all(out[18:23, 30] == 1)
    assert np.array_equal(out[(labels == 1)], labels[labels == 1])


def test_paint_clips_the_brush_to_the_image():
    out = paint(np.zeros((10, 10), np.int32), [[-2, -2], [0, 0]], 2, 0)
    assert np.array_equal(np.argwhere(out > 0).min(axis=0), [0, 0])
    assert out[0, 0] == 1 and out[2, 0] == 1 and out[3, 0] == 0


def test_paint_edit_errors():
    labels = two_discs()
    with pytest.raises(EditError, match="label_id 7"):
        paint(labels, [[5, 5]], 2, 7)
    with pytest.raises(EditError, match="no background"):
        paint(labels, [[20, 18]], 2, 0)  # inside nucleus 1: no free pixel
    with pytest.raises(EditError, match="outside the image"):
        paint(labels, [[-20, -20]], 2, 0)


@pytest.mark.parametrize(
    ("radius", "error"), [(-1, InputError), (2.5, InputTypeError), (71, InputError)]
)
def test_paint_and_erase_refuse_a_bad_radius(radius, error):
    for edit in (
        lambda: paint(two_discs(), [[1, 1]], radius, 0),
        lambda: erase(two_discs(), [[1, 1]], radius),
    ):
        with pytest.raises(error) as raised:
            edit()
        assert_one_line_naming(raised, "radius")


def test_erase_clears_every_nucleus_under_the_brush():
    labels = two_discs()
    out = erase(labels, [[20, 0], [20, 69]], 1)
    assert np.all(out[19:22, :] == 0)
    assert nucleus_count(out) == 2  # each disc is cut in two pieces and stays one nucleus
    assert_numbered(out, np.int32)


def test_erase_limited_to_one_label_leaves_the_others():
    labels = two_discs()
    out = erase(labels, [[20, 0], [20, 69]], 1, label_id=2)
    assert np.array_equal(out == 1, labels == 1)
    assert np.all(out[19:22, 40:61] == 0)


def test_erasing_a_whole_nucleus_renumbers():
    labels = three_squares(np.int8)
    out = erase(labels, [[5, 4]], 5)
    assert_numbered(out, np.int8)
    assert nucleus_count(out) == 2
    assert np.array_equal(out == 1, labels == 3)
    assert np.array_equal(erase(labels, [[-8, -8]], 2), labels)


# --------------------------------------------------------------------------------------------
# All edits: checks and invariants on random images
# --------------------------------------------------------------------------------------------

EDITS = {
    "delete": lambda labels, rng: delete_nuclei(labels, rng.integers(0, 6, 2).tolist()),
    "add": lambda labels, rng: add_nucleus(labels, rng.uniform(-5, 37, (rng.integers(3, 8), 2))),
    "split": lambda labels, rng: split_nucleus(
        labels, rng.uniform(-3, 35, (rng.integers(2, 4), 2))
    ),
    "merge": lambda labels, rng: merge_nuclei(labels, rng.integers(0, 6, 3).tolist()),
    "paint": lambda labels, rng: paint(
        labels,
        rng.uniform(0, 32, (rng.integers(1, 4), 2)),
        int(rng.integers(0, 4)),
        int(rng.integers(0, labels.max() + 1)),
    ),
    "erase": lambda labels, rng: erase(
        labels,
        rng.uniform(0, 32, (rng.integers(1, 4), 2)),
        int(rng.integers(0, 4)),
        rng.choice([None, 1, 2]),
    ),
}


def random_labels(seed, dtype=np.int32, shape=(32, 32)):
    """Up to 6 overlapping random discs, numbered 1..n."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype=dtype)
    for number in range(1, rng.integers(1, 7)):
        labels[disc(shape, rng.uniform(0, 32, 2), rng.uniform(2, 9))] = number
    return delete_nuclei(labels, [])


def random_edit(labels, name, seed):
    """``labels`` after the edit ``name`` with random arguments, or ``None`` on an EditError."""
    try:
        return EDITS[name](labels, np.random.default_rng(seed))
    except EditError:
        return None


@pytest.mark.parametrize("name", sorted(EDITS))
def test_every_edit_refuses_a_float_or_3d_label_image(name):
    rng = np.random.default_rng(0)
    with pytest.raises(InputTypeError) as raised:
        EDITS[name](np.zeros((8, 8)), rng)
    assert_one_line_naming(raised, "labels")
    with pytest.raises(InputError) as raised:
        EDITS[name](np.zeros((8, 8, 2), np.int32), rng)
    assert_one_line_naming(raised, "labels")


@settings(max_examples=60, deadline=None, database=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.uint8, np.int16, np.uint16, np.int32, np.uint64]),
    name=st.sampled_from(sorted(EDITS)),
    edit_seed=st.integers(0, 2**32 - 1),
)
def test_every_edit_keeps_dtype_and_input_and_numbers_without_gaps(seed, dtype, name, edit_seed):
    labels = random_labels(seed, dtype)
    before = labels.copy()
    out = random_edit(labels, name, edit_seed)
    assert np.array_equal(labels, before)
    if out is not None:
        assert out is not labels
        assert_numbered(out, dtype)


# --------------------------------------------------------------------------------------------
# EditHistory
# --------------------------------------------------------------------------------------------


def test_history_applies_undoes_and_redoes():
    history = EditHistory(three_squares())
    assert (history.count, history.steps, history.can_undo, history.can_redo) == (
        3,
        [],
        False,
        False,
    )
    deleted = history.apply(delete_nuclei(history.labels, [1]), "delete")
    merged = history.apply(merge_nuclei(history.labels, [1, 2]), "merge")
    assert history.count == 1 and history.steps == ["delete", "merge"]
    assert np.array_equal(history.undo(), deleted) and history.can_redo
    assert np.array_equal(history.undo(), three_squares()) and not history.can_undo
    assert np.array_equal(history.undo(), three_squares())  # nothing left: unchanged
    assert np.array_equal(history.redo(), deleted)
    assert np.array_equal(history.redo(), merged) and not history.can_redo
    assert np.array_equal(history.redo(), merged)
    assert history.count == 1


def test_a_new_apply_after_undo_drops_the_redo_branch():
    history = EditHistory(three_squares())
    history.apply(delete_nuclei(history.labels, [1]), "delete 1")
    history.undo()
    history.apply(delete_nuclei(history.labels, [3]), "delete 3")
    assert not history.can_redo and history.steps == ["delete 3"]
    assert np.array_equal(history.redo(), delete_nuclei(three_squares(), [3]))


def test_history_keeps_at_most_max_steps_dropping_the_oldest():
    history = EditHistory(np.zeros((10, 10), np.int32), max_steps=3)
    states = [history.labels]
    for row in range(5):
        states.append(history.apply(paint(history.labels, [[2 * row, 2]], 0, 0), f"dot {row}"))
    assert history.steps == ["dot 2", "dot 3", "dot 4"]
    for state in reversed(states[2:5]):
        assert np.array_equal(history.undo(), state)
    assert not history.can_undo and history.count == 2


def test_history_keeps_only_the_changed_pixels_and_its_labels_read_only():
    labels = np.zeros((512, 512), np.int32)
    history = EditHistory(labels)
    history.apply(paint(history.labels, [[100, 100]], 2, 0), "dot")
    step = history._done[-1]
    assert step.index.size == np.count_nonzero(disk(2)) == step.before.size == step.after.size
    with pytest.raises(ValueError):
        history.labels[0, 0] = 5
    labels[0, 0] = 9  # the history holds its own copy
    history.undo()
    assert history.labels[0, 0] == 0


def test_an_apply_that_changes_nothing_adds_no_step():
    history = EditHistory(three_squares())
    history.apply(three_squares(), "nothing")
    assert not history.can_undo and history.steps == []


def test_history_refuses_bad_arguments_naming_them():
    history = EditHistory(three_squares())
    with pytest.raises(InputError) as raised:
        history.apply(three_squares(np.int16), "other dtype")
    assert_one_line_naming(raised, "new_labels")
    with pytest.raises(InputError) as raised:
        history.apply(np.zeros((3, 3), np.int32), "other shape")
    assert_one_line_naming(raised, "new_labels")
    with pytest.raises(InputError) as raised:
        history.apply(three_squares(), " ")
    assert_one_line_naming(raised, "description")
    with pytest.raises(InputError) as raised:
        EditHistory(three_squares(), max_steps=0)
    assert_one_line_naming(raised, "max_steps")


ACTIONS = st.one_of(
    st.tuples(st.sampled_from(sorted(EDITS)), st.integers(0, 2**32 - 1)),
    st.sampled_from([("undo", 0), ("redo", 0)]),
)


@settings(max_examples=60, deadline=None, database=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    max_steps=st.integers(1, 6),
    actions=st.lists(ACTIONS, max_size=25),
)
def test_random_edit_sequences_undo_and_redo_exactly(seed, max_steps, actions):
    start = random_labels(seed, np.uint16)
    history = EditHistory(start, max_steps=max_steps)
    current, past, future = start, [], []  # the reference: whole images
    for name, edit_seed in actions:
        if name == "undo" and past:
            future.append(current)
            current = past.pop()
            history.undo()
        elif name == "redo" and future:
            past.append(current)
            current = future.pop()
            history.redo()
        elif name in EDITS:
            edited = random_edit(history.labels, name, edit_seed)
            if edited is not None and not np.array_equal(edited, current):
                past = [*past, current][-max_steps:]
                future = []
                current = edited
            if edited is not None:
                history.apply(edited, name)
        else:
            assert np.array_equal(history.undo() if name == "undo" else history.redo(), current)
        assert np.array_equal(history.labels, current)
        assert history.labels.dtype == np.uint16
        assert (history.can_undo, history.can_redo) == (bool(past), bool(future))
        assert history.count == nucleus_count(current)
    while history.can_undo:
        history.undo()
    assert np.array_equal(history.labels, past[0] if past else current)
