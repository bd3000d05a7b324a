"""Many support-to-query registrations at once, in worker processes (each registration runs on one thread)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

import numpy as np

from monai_fewshot.registration.pairwise import RegistrationResult, register_support

__all__ = ["process_pool", "register_pairs"]


def process_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` worker processes, forked where the platform can (the parent's arrays and modules are not
    pickled again), spawned elsewhere."""
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    return ProcessPoolExecutor(workers, mp_context=context)


def _register(pair: tuple[np.ndarray, np.ndarray, np.ndarray], options: dict[str, Any]) -> RegistrationResult:
    return register_support(*pair, **options)


def register_pairs(
    pairs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], workers: int = 1, **options: Any
) -> list[RegistrationResult]:
    """Register each ``(query, support, support_mask)`` of ``pairs`` with :func:`register_support`.

    Args:
        pairs: the triples to register, 2D or 3D.
        workers: worker processes (default 1: register in this process). Results keep the order of ``pairs``.
        options: keyword arguments of :func:`register_support` (spacing, stages, seed, ...).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}.")
    if workers == 1 or len(pairs) < 2:
        return [register_support(*pair, **options) for pair in pairs]
    with process_pool(min(workers, len(pairs))) as pool:
        return list(pool.map(partial(_register, options=options), pairs))
