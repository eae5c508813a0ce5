"""Data sets shipped with detbalance (framework-free: numpy + Pillow)."""

from .synthetic import (
    SyntheticDataset,
    SyntheticSpec,
    default_cache_dir,
    frequency_groups_of,
    generate,
    get_synthetic_dataset,
    train_schedule,
)

__all__ = [
    "SyntheticDataset",
    "SyntheticSpec",
    "default_cache_dir",
    "frequency_groups_of",
    "generate",
    "get_synthetic_dataset",
    "train_schedule",
]
