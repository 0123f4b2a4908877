"""Models: a readable registry of built-in architectures, user callables, and checkpoints.

``build_model('digits_cnn')``, ``build_model('pkg.mod:make_net')`` and
``build_model('path/to/file.py:make_net')`` all return an ``nn.Module``;
``load_checkpoint`` reads the common checkpoint shapes safely (``weights_only``).
"""

from engine.models import (  # noqa: F401  (registers the zoo)
    densenet,
    digits,
    resnet,
    tabular,
    transformer,
    vgg,
)
from engine.models.checkpoint import load_checkpoint, read_state_dict
from engine.models.registry import (
    ModelInfo,
    build_model,
    create_model,
    list_models,
    parameter_count,
    register_model,
)

__all__ = [
    "ModelInfo",
    "build_model",
    "create_model",
    "list_models",
    "load_checkpoint",
    "parameter_count",
    "read_state_dict",
    "register_model",
]
