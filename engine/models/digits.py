"""Small models for the embedded digits data (1x8x8 images, 10 classes), fast on a CPU.

Written for tui-landscape; they stand in for the paper's CIFAR models in the demo
and in the tests. ``digits_cnn`` has batch norm (so ``states`` directions matter),
``digits_mlp`` has none.
"""

from __future__ import annotations

from torch import nn

from engine.models.registry import register_model

__all__ = ["DigitsCNN", "digits_cnn", "digits_mlp"]


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class DigitsCNN(nn.Module):
    """Two conv-BN-ReLU layers, a 2x2 max pool, and a two-layer classifier."""

    def __init__(self, width: int = 8, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv_bn(1, width), *_conv_bn(width, 2 * width), nn.MaxPool2d(2)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * width * 16, 64), nn.ReLU(), nn.Linear(64, num_classes)
        )

    def forward(self, x):
        return self.classifier(self.features(x))


@register_model(input_shape=(1, 8, 8))
def digits_cnn(width: int = 8, num_classes: int = 10) -> nn.Module:
    """Small CNN with batch norm for 8x8 digits."""
    return DigitsCNN(width=width, num_classes=num_classes)


@register_model(input_shape=(1, 8, 8))
def digits_mlp(hidden: int = 128, num_classes: int = 10) -> nn.Module:
    """Two-hidden-layer MLP for 8x8 digits (no batch norm)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden // 2),
        nn.ReLU(),
        nn.Linear(hidden // 2, num_classes),
    )
