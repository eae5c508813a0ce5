"""Class weights, LVIS frequency groups, repeat factors and the weights file (numpy/torch only)."""

from .effective_number import inverse_effective_number
from .file import FORMAT, VERSION, ClassStats, WeightsFile, load_weights, save_weights
from .sampling import frequency_groups, repeat_factors
from .schemes import DEFAULT_NORMALIZATION, NORMALIZATIONS, SCHEMES, compute_class_weights

__all__ = [
    "SCHEMES",
    "NORMALIZATIONS",
    "DEFAULT_NORMALIZATION",
    "FORMAT",
    "VERSION",
    "ClassStats",
    "WeightsFile",
    "compute_class_weights",
    "frequency_groups",
    "repeat_factors",
    "save_weights",
    "load_weights",
    "inverse_effective_number",
]
