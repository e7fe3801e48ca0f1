"""Calibration: a model's minimum nucleus confidence and seed height, chosen on annotated
images it was not trained on, and kept in its card.

A nucleus is kept only where the network's foreground probability reaches the minimum
confidence somewhere inside it (:func:`nuclei_core.segmentation.postprocess.keep_confident`),
the object-level counterpart of the pixel threshold, like StarDist's object probability
threshold (which StarDist also optimises on validation images at the end of training). How
sure a network is depends on the network, so each model gets its own level: written into
its card's ``postprocess`` (:func:`write_calibration`), where
:func:`nuclei_core.segmentation.options.model_settings` reads it for the app and the CLI.
For a model with a distance output the seed height (how far a peak of the distance map must
rise to seed a nucleus of its own) is chosen with it, from :data:`PEAK_HEIGHTS`: 0.2 suits
the default model, but a checkpoint of a longer run scored 0.006 DSB higher at 0.3
(``bench/results/levels.md``, ``docs/MODEL.md``).

:func:`calibrate` runs every image once through the network as the app runs it (nucleus
size estimated, :meth:`~nuclei_core.segmentation.options.SegmentOptions.for_model`), finds
its nuclei at every seed height and level of ``levels`` and scores them
(:func:`nuclei_core.evaluation.metrics.evaluate_labels`). The chosen pair has the highest
mean of the sets' DSB scores, each set counting once however many images it has (on a tie
the default height, then the lowest level), so with 0 among the levels and the default height
among the heights calibration never lowers the validation score. ``train`` and
``finetune`` run it on their validation images; ``python -m nuclei_core calibrate`` on any
model and folders of annotated images.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from nuclei_core.checks import check_fraction
from nuclei_core.errors import ConfigError
from nuclei_core.segmentation.options import SegmentOptions

__all__ = [
    "LEVELS",
    "PEAK_HEIGHTS",
    "Calibration",
    "calibrate",
    "choose_level",
    "choose_levels",
    "image_scores",
    "level_key",
    "level_scores",
    "set_means",
    "write_calibration",
]

LEVELS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.985, 0.99)
"""The minimum confidences tried; 0 keeps every nucleus (the uncalibrated result)."""

PEAK_HEIGHTS = (0.15, 0.2, 0.3, 0.4)
"""The seed heights tried (models with a distance output; others have none to choose)."""

SCORES = ("dsb_score", "f1", "foreground_iou")
"""The scores kept for each image and level."""


def level_key(level: float) -> str:
    """How a level is written as a key: ``0.985`` -> ``'0.985'``, ``0.0`` -> ``'0'``.

    Examples
    --------
    >>> level_key(0.0), level_key(0.985)
    ('0', '0.985')
    """
    return f"{level:g}"


@dataclass(frozen=True)
class Calibration:
    """The chosen minimum confidence and seed height, and the validation scores behind them.

    Attributes
    ----------
    min_confidence : float
        The chosen level.
    levels : tuple of float
        Every level tried, ascending.
    means : dict
        ``{set: {level key: {score: mean over the set's images}}}`` at the chosen height.
    n_images : dict
        ``{set: number of images}``.
    images : list of dict
        Each image's set, id, kind and scores at every height and level.
    peak_height : float
        The chosen seed height.
    heights : dict
        ``{height key: {set: mean DSB score}}`` at each height's best level.

    Examples
    --------
    >>> means = {"dsb": {"0": {"dsb_score": 0.5}, "0.9": {"dsb_score": 0.56}}}
    >>> calibration = Calibration(0.9, (0.0, 0.9), means, {"dsb": 4})
    >>> calibration.validation_scores(), calibration.uncalibrated_scores()
    ({'dsb': 0.56}, {'dsb': 0.5})
    """

    min_confidence: float
    levels: tuple[float, ...]
    means: dict
    n_images: dict
    images: list = field(default_factory=list, repr=False, compare=False)
    peak_height: float = SegmentOptions.peak_height
    heights: dict = field(default_factory=dict)

    def scores_at(self, level: float) -> dict[str, float]:
        """Each set's mean DSB score at ``level`` (one of :attr:`levels`)."""
        return {name: sets[level_key(level)]["dsb_score"] for name, sets in self.means.items()}

    def validation_scores(self) -> dict[str, float]:
        """Each set's mean DSB score at the chosen level."""
        return self.scores_at(self.min_confidence)

    def uncalibrated_scores(self) -> dict[str, float] | None:
        """Each set's mean DSB score keeping every nucleus (level 0); None if 0 was not tried."""
        return self.scores_at(0.0) if 0.0 in self.levels else None

    def card_entry(self, chosen_by: str) -> dict:
        """What :func:`write_calibration` puts in a card's ``postprocess``.

        Examples
        --------
        >>> means = {"dsb": {"0": {"dsb_score": 0.5}, "0.9": {"dsb_score": 0.56}}}
        >>> entry = Calibration(0.9, (0.0, 0.9), means, {"dsb": 4}).card_entry("test")
        >>> entry["min_confidence"], entry["validation_dsb_score"], entry["n_images"]
        (0.9, {'dsb': 0.56}, {'dsb': 4})
        >>> entry["peak_height"]
        0.2
        """
        uncalibrated = self.uncalibrated_scores()
        return {
            "min_confidence": self.min_confidence,
            "peak_height": self.peak_height,
            "chosen_by": chosen_by,
            "validation_dsb_score": _rounded(self.validation_scores()),
            "uncalibrated_dsb_score": None if uncalibrated is None else _rounded(uncalibrated),
            "n_images": dict(self.n_images),
            "levels": {level_key(level): _rounded(self.scores_at(level)) for level in self.levels},
            "peak_heights": {key: _rounded(scores) for key, scores in self.heights.items()},
        }


def _rounded(scores: Mapping[str, float]) -> dict[str, float]:
    return {name: round(float(value), 4) for name, value in scores.items()}


def image_scores(model, image, truth, options: SegmentOptions, levels, heights=None) -> dict:
    """One image's scores (:data:`SCORES`) at every seed height and level, from one network
    pass (:func:`level_scores` of its probabilities); ``heights`` None tries only
    ``options.peak_height``.

    Returns
    -------
    dict
        ``{height key: {level key: {score: value}}}``.

    Examples
    --------
    >>> from nuclei_core.network.model import ModelConfig, build_unet
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> truth = np.zeros((32, 32), np.int32); truth[8:16, 8:16] = 1
    >>> scores = image_scores(model, np.zeros((32, 32), np.uint8), truth,
    ...                       SegmentOptions(), (0.0, 0.9), (0.2, 0.3))
    >>> sorted(scores), sorted(scores["0.2"]), sorted(scores["0.2"]["0"])
    (['0.2', '0.3'], ['0', '0.9'], ['dsb_score', 'f1', 'foreground_iou'])
    """
    from nuclei_core.segmentation.segment import predict_with_size

    prediction = predict_with_size(model, image, replace(options, min_confidence=0.0))
    heights = (options.peak_height,) if heights is None else heights
    return level_scores(prediction, truth, levels, heights)


def level_scores(prediction, truth, levels, heights) -> dict:
    """The scores (:data:`SCORES`) of one prediction's nuclei at every seed height and level.

    ``prediction`` is what :func:`~nuclei_core.segmentation.segment.predict_with_size`
    returns (its options' threshold and size apply); the nuclei are found once per height
    (once in all for a network without a distance output, where the height changes nothing)
    and filtered at each minimum confidence.

    Returns
    -------
    dict
        ``{height key: {level key: {score: value}}}``.
    """
    from skimage.segmentation import relabel_sequential

    from nuclei_core.evaluation.metrics import evaluate_labels
    from nuclei_core.segmentation.postprocess import keep_confident
    from nuclei_core.segmentation.segment import find_nuclei

    probabilities, used, found = prediction
    scores = {}
    for height in heights:
        if scores and probabilities.shape[-1] != 3:  # no distance map: the same nuclei
            scores[level_key(height)] = next(iter(scores.values()))
            continue
        labels = find_nuclei(probabilities, replace(used, peak_height=height), found)
        scores[level_key(height)] = {}
        for level in levels:
            kept = relabel_sequential(keep_confident(labels, probabilities[..., 0], level))[0]
            result = evaluate_labels(truth, kept).as_dict()
            scores[level_key(height)][level_key(level)] = {
                key: float(result[key]) for key in SCORES
            }
    return scores


def set_means(rows: Sequence[dict], levels) -> dict:
    """``{set: {level key: {score: mean}}}`` over each set's images (rows of
    ``{"data": set, "scores": ...}``).

    Examples
    --------
    >>> rows = [{"data": "a", "scores": {"0": {"dsb_score": 0.5}}},
    ...         {"data": "a", "scores": {"0": {"dsb_score": 0.7}}}]
    >>> round(set_means(rows, [0.0])["a"]["0"]["dsb_score"], 3)
    0.6
    """
    means = {}
    for name in sorted({row["data"] for row in rows}):
        chosen = [row["scores"] for row in rows if row["data"] == name]
        means[name] = {
            level_key(level): {
                key: float(np.mean([image[level_key(level)][key] for image in chosen]))
                for key in chosen[0][level_key(level)]
            }
            for level in levels
        }
    return means


def choose_level(means: Mapping[str, dict], levels) -> float:
    """The level with the highest mean of the sets' DSB scores (the lowest on a tie).

    Examples
    --------
    >>> means = {"dsb": {"0": {"dsb_score": 0.60}, "0.9": {"dsb_score": 0.61}},
    ...          "he": {"0": {"dsb_score": 0.25}, "0.9": {"dsb_score": 0.26}}}
    >>> choose_level(means, [0.0, 0.9])
    0.9
    """

    def overall(level):
        return float(np.mean([sets[level_key(level)]["dsb_score"] for sets in means.values()]))

    best = max(overall(level) for level in levels)
    return min(level for level in levels if overall(level) >= best - 1e-9)


def choose_levels(rows: Sequence[dict], levels, heights, default_height: float):
    """The seed height and minimum confidence with the highest mean of the sets' DSB scores
    over ``rows`` (each ``{"data": set, "scores": {height key: {level key: scores}}}``); on
    a tie ``default_height``, then the lower height, and the lowest level.

    Returns
    -------
    tuple
        ``(height, level, means at that height (as set_means), {height key: {set: DSB score
        at that height's best level}})``.

    Examples
    --------
    >>> def row(data, at_02, at_03):
    ...     return {"data": data, "scores": {"0.2": {"0": {"dsb_score": at_02}},
    ...                                      "0.3": {"0": {"dsb_score": at_03}}}}
    >>> choose_levels([row("a", 0.5, 0.6), row("b", 0.3, 0.3)], [0.0], [0.2, 0.3], 0.2)[:2]
    (0.3, 0.0)
    >>> choose_levels([row("a", 0.5, 0.5)], [0.0], [0.2, 0.3], 0.3)[:2]
    (0.3, 0.0)
    """
    chosen = {}
    for height in heights:
        at_height = [{**row, "scores": row["scores"][level_key(height)]} for row in rows]
        means = set_means(at_height, levels)
        level = choose_level(means, levels)
        scores = {name: sets[level_key(level)]["dsb_score"] for name, sets in means.items()}
        chosen[height] = (level, means, scores)

    overall = {height: float(np.mean(list(chosen[height][2].values()))) for height in heights}
    best = [height for height in heights if overall[height] >= max(overall.values()) - 1e-9]
    height = default_height if default_height in best else min(best)
    level, means, _ = chosen[height]
    return height, level, means, {level_key(h): chosen[h][2] for h in heights}


def calibrate(
    model,
    samples: Mapping[str, Sequence],
    options: SegmentOptions | None = None,
    levels: Sequence[float] = LEVELS,
    progress: Callable[[str], None] | None = None,
    heights: Sequence[float] = PEAK_HEIGHTS,
) -> Calibration:
    """Choose ``model``'s minimum nucleus confidence and seed height on annotated images.

    Parameters
    ----------
    model : keras.Model or InferenceModel
        The network (:func:`nuclei_core.network.runtime.load_inference_model`).
    samples : mapping of str to sequence of Sample
        Each set's annotated images (:class:`nuclei_core.datasets.folders.Sample`), images
        the model was not trained on.
    options : SegmentOptions, optional
        How the model segments (its card's, :meth:`SegmentOptions.for_model`); the
        minimum confidence in it is ignored.
    levels : sequence of float
        The levels tried, each in [0, 1].
    progress : callable, optional
        Called with one line after each image.
    heights : sequence of float
        The seed heights tried, each between 0 and 1 (the options' own is always tried).

    Returns
    -------
    Calibration

    Raises
    ------
    ConfigError
        No image to calibrate on, or a level outside [0, 1].

    Examples
    --------
    >>> from nuclei_core.network.model import ModelConfig, build_unet
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> calibrate(model, {"none": []})
    Traceback (most recent call last):
    ...
    nuclei_core.errors.ConfigError: calibration needs annotated images; none were given
    """
    from nuclei_core.datasets.folders import load_sample
    from nuclei_core.segmentation.preprocess import image_kind

    levels = tuple(sorted({check_fraction(level, "calibration level") for level in levels}))
    if not levels:
        raise ConfigError("calibration needs at least one level")
    if not any(len(items) for items in samples.values()):
        raise ConfigError("calibration needs annotated images; none were given")
    options = options or SegmentOptions()
    heights = tuple(sorted({options.peak_height, *heights}))
    for height in heights:
        if not 0.0 < height < 1.0:
            raise ConfigError(f"seed height must be between 0 and 1, got {height}")
    rows = []
    for name, items in samples.items():
        for index, sample in enumerate(items, start=1):
            image, truth = load_sample(sample)
            scores = image_scores(model, image, truth, options, levels, heights)
            rows.append(
                {"data": name, "id": sample.id, "kind": image_kind(image), "scores": scores}
            )
            if progress:
                progress(f"calibration: {name} {index}/{len(items)} {sample.id}")
    height, level, means, height_scores = choose_levels(rows, levels, heights, options.peak_height)
    return Calibration(
        min_confidence=level,
        levels=levels,
        means=means,
        n_images={name: sum(row["data"] == name for row in rows) for name in means},
        images=rows,
        peak_height=height,
        heights=height_scores,
    )


def write_calibration(model_path, calibration: Calibration, chosen_by: str) -> dict:
    """Write ``calibration`` into the card of the model at ``model_path`` (its
    ``postprocess``); return the entry written.

    ``chosen_by`` says how: the command or the run that chose it.
    """
    from nuclei_core.registry.cards import read_card, write_card

    card = read_card(model_path)
    entry = calibration.card_entry(chosen_by)
    card["postprocess"] = entry
    write_card(model_path, card)
    return entry
