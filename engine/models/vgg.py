"""VGG-9 for CIFAR as in the reference code, with its module names (``features``, ``fc``,
``classifier``) so reference checkpoints load strictly."""

from __future__ import annotations

from torch import Tensor, nn

from engine.models.registry import register_model

__all__ = ["VGG", "vgg9"]

_CFG = {"vgg9": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M"]}


class VGG(nn.Module):
    """conv3x3(bias)-BN-ReLU stacks with 2x2 max pools, then Linear-BN1d-ReLU and a classifier."""

    def __init__(self, cfg: list, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Linear(c * 4 * 4, 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True)
        )
        self.classifier = nn.Linear(256, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.fc(self.features(x).flatten(1)))


@register_model(input_shape=(3, 32, 32))
def vgg9(num_classes: int = 10) -> nn.Module:
    """VGG-9 for CIFAR (the paper's batch-size and optimizer experiments)."""
    return VGG(_CFG["vgg9"], num_classes)
