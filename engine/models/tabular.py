"""A small regression MLP for tabular features, for regression loss surfaces on a CPU.

Written for tui-landscape. ``diabetes_mlp`` fits scikit-learn's bundled diabetes data
(10 standardised features, one standardised target; ``engine.tabular``): two hidden ReLU
layers and a linear output, no batch norm, 1,441 parameters at the defaults.
"""

from __future__ import annotations

from torch import Tensor, nn

from engine.models.registry import register_model

__all__ = ["RegressionMLP", "diabetes_mlp"]


class RegressionMLP(nn.Module):
    """Features (B, in_features) to predictions (B, out_features): Linear-ReLU twice, Linear."""

    def __init__(self, in_features: int = 10, hidden: int = 32, out_features: int = 1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, out_features),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@register_model(input_shape=(10,))
def diabetes_mlp(in_features: int = 10, hidden: int = 32, out_features: int = 1) -> nn.Module:
    """Two-hidden-layer regression MLP for the diabetes data (no batch norm)."""
    return RegressionMLP(in_features=in_features, hidden=hidden, out_features=out_features)
