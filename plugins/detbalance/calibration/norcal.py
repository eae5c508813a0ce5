"""NorCal: post-hoc calibration of a softmax detector by the training class frequencies.

Pan et al., "On Model Calibration for Long-Tailed Object Detection and Instance Segmentation", NeurIPS 2021.
A softmax box classifier trained on long-tailed data scores rare classes too low. NorCal divides each foreground
class's score by a power of its training frequency, leaves background untouched, and renormalises the row:

.. math::

    w_c = n_c^{-\\gamma} \\quad\\text{(``power``)}
    \\qquad\\text{or}\\qquad
    w_c = \\frac{1 - \\beta}{1 - \\beta^{n_c}} \\quad\\text{(``class_balanced``, } \\beta = \\gamma \\text{)}

    \\tilde s_{r,c} = \\frac{w_c\\, s_{r,c}}{\\sum_{j<K} w_j\\, s_{r,j} + s_{r,K}} \\quad (c < K),
    \\qquad \\tilde s_{r,K} = \\frac{s_{r,K}}{\\sum_{j<K} w_j\\, s_{r,j} + s_{r,K}}

where ``n_c`` is the number of training images containing class ``c`` (the reference's frequency) and ``s`` is,
by ``on``: the softmax probabilities (``"probs"``), ``exp(logits)`` (``"exps"``, which with ``renorm`` equals
``softmax(x_c + log w_c)``), or the softmax of the logits after the foreground logits were multiplied by ``w``
(``"logits"``: ``x_c * w_c``; the row is already normalised). ``renorm=False`` skips the division. ``gamma = 0``
(or ``beta = 0``) leaves every score unchanged.

Shapes: ``logits[R, K + 1]`` (background logit last), ``class_counts[K]`` -> ``scores[R, K + 1]``. Computed in
float32 (float64 for float64 logits); differentiable in ``logits``.

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 2.0, 0.0]])          # two classes seen in 100 and 1 images, background
    >>> norcal_scores(logits, [100, 1], gamma=0.5).argmax(dim=1).item()   # the rare class wins the tie
    1
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import NORCAL_ON, Counts, check_choice, check_counts, check_gamma, check_logits

__all__ = ["norcal_factors", "norcal_scores"]


def norcal_factors(
    class_counts: Counts, gamma: float, *, variant: str = "power", device=None, dtype: torch.dtype = torch.float64
) -> Tensor:
    """Per-class factors ``w[K]``: ``n_c ** -gamma`` (``power``) or ``(1 - beta) / (1 - beta ** n_c)``
    (``class_balanced``, ``beta = gamma`` in [0, 1)). Every count must be > 0."""
    gamma = check_gamma(gamma, variant)
    counts = check_counts(class_counts, device=device, dtype=torch.float64)
    if variant == "power":
        factors = counts.pow(-gamma)
    else:
        factors = (1.0 - gamma) / (1.0 - torch.pow(torch.full_like(counts, gamma), counts))
    return factors.to(dtype)


def norcal_scores(
    logits: Tensor,
    class_counts: Counts,
    gamma: float,
    *,
    on: str = "probs",
    renorm: bool = True,
    variant: str = "power",
) -> Tensor:
    """NorCal scores of a softmax head (module docstring): ``logits[R, K + 1]`` -> ``scores[R, K + 1]``.

    Args:
        logits: classifier outputs, background logit last.
        class_counts: ``K`` training image counts, every one > 0.
        gamma: ``gamma >= 0`` (``power``) or ``beta`` in [0, 1) (``class_balanced``).
        on: ``"probs"``, ``"exps"`` or ``"logits"``: what the factors multiply.
        renorm: divide each row by its sum (background included).
        variant: ``"power"`` or ``"class_balanced"``.

    Raises:
        ValueError: gamma out of range, a count <= 0, a column count other than ``len(class_counts) + 1``, an
            unknown ``on`` or ``variant``.
    """
    check_choice("on", on, NORCAL_ON)
    if not isinstance(renorm, bool):
        raise ValueError(f"renorm={renorm!r}; expected True or False")
    num_classes = check_counts(class_counts).numel()
    x = check_logits(logits, num_classes + 1, "[R, K + 1]")
    w = norcal_factors(class_counts, gamma, variant=variant, device=x.device, dtype=x.dtype)
    w_all = torch.cat([w, w.new_ones(1)])  # background is never rescaled
    if on == "logits":
        scores = torch.softmax(x * w_all, dim=1)
    elif on == "probs":
        scores = torch.softmax(x, dim=1) * w_all
    elif renorm:  # exps, renormalised: softmax(x + log w), computed without overflowing exp(x)
        return torch.softmax(x + w_all.log(), dim=1)
    else:  # exps as they are: exp(x) * w (not probabilities)
        scores = torch.exp(x) * w_all
    if renorm:
        scores = scores / scores.sum(dim=1, keepdim=True)
    return scores
