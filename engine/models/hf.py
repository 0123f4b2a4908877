"""Hugging Face ``transformers`` models as ``model.arch = "hf:PATH"``.

PATH is a local folder written by ``save_pretrained`` (``config.json`` plus weights). It is
loaded offline (``local_files_only=True``: nothing is looked up on the Hub), in float32 and in
eval mode, with the KV cache off. The class follows the saved config's ``architectures``
(an Auto class by the name's ending, else that class itself); ``model.kwargs.task`` chooses
an Auto class instead, and every other key of ``model.kwargs`` goes to ``from_pretrained``
(``num_labels``, ``attn_implementation``, ...).
``transformers`` is the optional extra ``tui-landscape[hf]``, imported only here.

No code from the folder runs: transformers is always called with ``trust_remote_code=False``
(never ``None``, with which it asks "[y/N]" on a terminal in the middle of a run), so a
config.json whose ``auto_map`` names the folder's own ``.py`` files is refused in one line.
``model.kwargs.trust_remote_code = true`` lifts that for a folder you trust: its Python
files then run with your rights, as any ``pkg.module:callable`` model does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.errors import ConfigError, LandscapeError, clean_text, describe

__all__ = ["HF_PREFIX", "TASKS", "is_hf_spec", "load_hf_model"]

HF_PREFIX = "hf:"
INSTALL_HINT = 'pip install "tui-landscape[hf]"'

# model.kwargs.task -> the Auto class that builds it.
TASKS = {
    "causal_lm": "AutoModelForCausalLM",
    "masked_lm": "AutoModelForMaskedLM",
    "seq2seq_lm": "AutoModelForSeq2SeqLM",
    "sequence_classification": "AutoModelForSequenceClassification",
    "token_classification": "AutoModelForTokenClassification",
    "image_classification": "AutoModelForImageClassification",
    "base": "AutoModel",
}
# Class-name endings in config.json's ``architectures`` -> task; the first match wins, so
# GPT2LMHeadModel (no "ForCausalLM" in its name) is a causal LM too.
_SUFFIX_TASKS = (
    ("ForCausalLM", "causal_lm"),
    ("LMHeadModel", "causal_lm"),
    ("ForMaskedLM", "masked_lm"),
    ("ForSequenceClassification", "sequence_classification"),
    ("ForTokenClassification", "token_classification"),
    ("ForImageClassification", "image_classification"),
)


def is_hf_spec(arch: str) -> bool:
    return arch.startswith(HF_PREFIX)


def task_of(architectures: list[str] | None) -> str | None:
    """The task of the first saved architecture whose name ends in a known head, or None."""
    for name in architectures or []:
        for suffix, task in _SUFFIX_TASKS:
            if name.endswith(suffix):
                return task
    return None


def _model_class(transformers: Any, task: str | None, architectures: list[str] | None) -> Any:
    """The Auto class of ``task``; without one, the saved class itself (the heads named
    ``...ForConditionalGeneration`` belong to several Auto classes), else ``AutoModel``."""
    if task is not None:
        return getattr(transformers, TASKS[task])
    name = (architectures or [""])[0]
    cls = getattr(transformers, name, None) if name.isidentifier() else None
    if isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel):
        return cls
    return transformers.AutoModel


def _remote_code(folder: Path) -> str | None:
    """The first class that config.json's ``auto_map`` has transformers import from the
    folder's own Python files (``modeling_x.MyModel``), or None."""
    try:
        auto_map = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("auto_map")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None  # transformers reports an unreadable config in its own words
    if not auto_map:
        return None
    refs = auto_map.values() if isinstance(auto_map, dict) else [auto_map]
    for ref in refs:
        ref = ref[0] if isinstance(ref, list | tuple) and ref else ref
        if isinstance(ref, str) and ref:
            return clean_text(ref)
    return "auto_map"


def load_hf_model(arch: str, kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """Load ``hf:PATH`` from its folder, offline, float32, eval mode; errors are one line."""
    path = arch.removeprefix(HF_PREFIX)
    if not path:
        raise ConfigError(f"Expected `model.arch` as 'hf:PATH' with a folder, but got {arch!r}.")
    folder = Path(os.path.expanduser(path))
    if not folder.exists():
        raise ConfigError(f"`model.arch`: Hugging Face model folder not found: {folder}")
    if not folder.is_dir():
        raise ConfigError(f"`model.arch`: {folder} is not a folder (expected 'hf:PATH')")
    if not (folder / "config.json").is_file():
        raise ConfigError(
            f"`model.arch`: {folder} has no config.json; expected a folder written by "
            "save_pretrained"
        )
    kwargs = dict(kwargs or {})
    task = kwargs.pop("task", None)
    trust = kwargs.pop("trust_remote_code", False)
    if not isinstance(trust, bool):
        raise ConfigError(
            f"Expected `model.kwargs.trust_remote_code` to be true or false, but got {trust!r}."
        )
    remote = _remote_code(folder)
    if remote and not trust:
        raise LandscapeError(
            f"`model.arch`: {folder} asks to run its own code ({remote}, in config.json's "
            "auto_map); refused: set `model.kwargs.trust_remote_code` = true only for a folder "
            "you trust"
        )
    if task is not None and task not in TASKS:
        raise ConfigError(
            f"Expected `model.kwargs.task` to be one of {', '.join(TASKS)}, but got {task!r}."
        )
    try:
        import transformers
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise ConfigError(
            f"`model.arch` = {arch!r} needs the transformers package: {INSTALL_HINT}"
        ) from None
    try:
        config = transformers.AutoConfig.from_pretrained(
            folder, local_files_only=True, trust_remote_code=trust
        )
    except Exception as e:
        raise LandscapeError(f"`model.arch`: {folder}/config.json: {describe(e)}") from e
    architectures = getattr(config, "architectures", None)
    cls = _model_class(transformers, task or task_of(architectures), architectures)
    bars = hf_logging.is_progress_bar_enabled()
    # Our commands show their own progress; a tqdm bar per load would cut into it (and into
    # the app's screen), once per pool worker.
    hf_logging.disable_progress_bar()
    try:
        model = cls.from_pretrained(
            folder,
            local_files_only=True,
            trust_remote_code=trust,
            dtype=torch.float32,
            **kwargs,
        )
    except TypeError as e:
        raise ConfigError(f"`model.kwargs` do not fit {arch!r}: {describe(e)}") from None
    except Exception as e:
        raise LandscapeError(
            f"`model.arch`: loading {folder} as {cls.__name__} failed: {describe(e)}"
        ) from e
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    if getattr(model.config, "use_cache", None):
        model.config.use_cache = False  # a landscape scores whole sequences; no cache to keep
    return model.eval()
