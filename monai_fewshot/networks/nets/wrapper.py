"""Base of the modules that wrap a few-shot network without adding weights."""

from __future__ import annotations

from torch import nn

__all__ = ["FewShotWrapper"]

_INNER = "network."


def _strip_network_prefix(module: nn.Module, state_dict: dict, prefix: str, local_metadata) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + _INNER)]:
        state_dict[prefix + key[len(prefix + _INNER) :]] = state_dict.pop(key)


def _add_network_prefix(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(prefix + _INNER)]:
        state_dict[prefix + _INNER + key[len(prefix) :]] = state_dict.pop(key)


class FewShotWrapper(nn.Module):
    """Holds ``self.network`` and exposes its state dict under the network's own names.

    A checkpoint of the network loads into the wrapper and the other way round, so training, evaluation,
    export and serving can wrap the network differently and share one ``model.pt``.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.register_state_dict_post_hook(_strip_network_prefix)
        self.register_load_state_dict_pre_hook(_add_network_prefix)
