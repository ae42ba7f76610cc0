"""Learned combination of the hidden states of an SSL encoder.

Authors
 * speechbrain-sslse contributors
"""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LayerCombination"]


class LayerCombination(nn.Module):
    """Learned combination of SSL hidden states ``[L, B, F, D] -> [B, F, D]``.

    Modes:

    - ``"linear"`` (default): an unconstrained weighted sum, the weights starting at
      ``1 / L``. The learned layer weights of the spectrum-aware vocoder include
      negative values, which a softmax cannot represent.
    - ``"softmax"``: weights ``softmax(w)`` (s3prl / SpeechBrain weighted sum),
      starting uniform.
    - ``last_only=True``: the last hidden state alone, no parameters.

    Arguments
    ---------
    num_layers : int
        Number of hidden states L.
    mode : str
        ``"linear"`` or ``"softmax"``.
    layer_norm : bool
        Normalise each hidden state over its features (no affine parameters) first.
    last_only : bool
        Use the last hidden state only.

    Example
    -------
    >>> combine = LayerCombination(4)
    >>> combine(torch.randn(4, 2, 10, 8)).shape
    torch.Size([2, 10, 8])
    >>> combine.weights
    tensor([0.2500, 0.2500, 0.2500, 0.2500])
    >>> LayerCombination(4, last_only=True).weights
    tensor([0., 0., 0., 1.])
    """

    MODES = ("linear", "softmax")

    def __init__(self, num_layers, mode="linear", layer_norm=False, last_only=False):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"unknown layer combination mode {mode!r}: expected one of {self.MODES}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.num_layers = num_layers
        self.mode = mode
        self.layer_norm = layer_norm
        self.last_only = last_only
        if last_only:
            self.register_parameter("weight", None)
        elif mode == "linear":
            self.weight = nn.Parameter(torch.full((num_layers,), 1.0 / num_layers))
        else:
            self.weight = nn.Parameter(torch.zeros(num_layers))

    def _effective_weights(self):
        if self.last_only:
            weights = torch.zeros(self.num_layers)
            weights[-1] = 1.0
            return weights
        return self.weight.softmax(dim=0) if self.mode == "softmax" else self.weight

    @property
    def weights(self):
        """The effective per-layer weights, a detached 1-D CPU tensor of length L."""
        return self._effective_weights().detach().cpu().clone()

    def forward(self, hidden):
        """Combines the hidden states.

        Arguments
        ---------
        hidden : torch.Tensor
            ``[L, B, F, D]``.

        Returns
        -------
        torch.Tensor
            ``[B, F, D]``.
        """
        if hidden.dim() != 4 or hidden.shape[0] != self.num_layers:
            raise ValueError(
                f"expected hidden states [L={self.num_layers}, B, F, D], got {tuple(hidden.shape)}"
            )
        if self.last_only:
            hidden = hidden[-1:]
        if self.layer_norm:
            hidden = F.layer_norm(hidden, hidden.shape[-1:])
        if self.last_only:
            return hidden[0]
        weights = self._effective_weights().to(hidden.dtype)
        return torch.einsum("l,lbfd->bfd", weights, hidden)
