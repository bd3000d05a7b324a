"""How an episode batch reaches a few-shot network inside MONAI's engines."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["EPISODE_KEYS", "prepare_episode_batch"]

#: keys of an episode batch: query (B, C, *S), support (B, K, C, *S), support_mask (B, K, 1, *S),
#: query_label (B, 1, *S)
EPISODE_KEYS = ("query", "support", "support_mask", "query_label")


def prepare_episode_batch(
    batchdata: dict[str, Any], device: str | torch.device | None = None, non_blocking: bool = False, **kwargs: Any
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor], dict]:
    """``prepare_batch`` for ``SupervisedTrainer``/``SupervisedEvaluator``: the network is called as
    ``network(query, support, support_mask)`` and the loss as ``loss(output, query_label)``."""
    missing = [key for key in EPISODE_KEYS if key not in batchdata]
    if missing:
        raise KeyError(f"episode batch lacks {missing}; an episode batch holds {list(EPISODE_KEYS)}.")

    def move(key: str) -> torch.Tensor:
        value = batchdata[key]
        value = value.as_tensor() if hasattr(value, "as_tensor") else value
        return value.to(device=device, non_blocking=non_blocking, **kwargs)

    return move("query"), move("query_label"), (move("support"), move("support_mask")), {}
