"""A small byte-level causal transformer, for language-model loss surfaces on a CPU.

The design follows Karpathy's nanoGPT (``model.py``): pre-norm blocks of causal multi-head
self-attention and a GELU MLP, each added to a residual stream, learned token and position
embeddings, a final LayerNorm and a linear head; residual output projections start smaller
(std 0.02 / sqrt(2 * layers)) so the stream's variance does not grow with depth. Written
anew for tui-landscape, with two departures: the head is not tied to the token embedding (a
tied weight would be one parameter under two state-dict names, and directions are made per
name), and there is no dropout (surfaces are evaluated in eval mode anyway).

``char_transformer`` reads UTF-8 bytes (vocab 256) from ``engine.textdata``; its defaults
(width 64, 2 layers, 4 heads, context 64) give 137,280 parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.models.registry import register_model

__all__ = ["Block", "CausalSelfAttention", "CharTransformer", "char_transformer"]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t sees positions <= t only."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        # (B, T, C) -> (B, heads, T, C / heads)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    """LayerNorm, attention, residual; LayerNorm, MLP (4x wide, GELU), residual."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads)
        self.ln2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, 4 * width)
        self.proj = nn.Linear(4 * width, width)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.proj(F.gelu(self.fc(self.ln2(x))))


class CharTransformer(nn.Module):
    """Token ids (B, T) to next-token logits (B, T, vocab), for T <= context + 1.

    ``context`` is the tokens a prediction may look back on, as ``charlm_datasets(context)``
    means it: a chunk holds context + 1 tokens and ``causal_lm`` feeds it whole, taking the loss
    on the context predictions that have a next token, so the position table has context + 1
    rows.
    """

    def __init__(
        self, vocab: int = 256, context: int = 64, width: int = 64, layers: int = 2, heads: int = 4
    ) -> None:
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(context + 1, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)
        self._init(layers)

    def _init(self, layers: int) -> None:
        for name, p in self.named_parameters():
            if p.dim() == 1:
                continue  # biases 0 and LayerNorm gains 1, as built
            std = 0.02 / math.sqrt(2 * layers) if name.endswith("proj.weight") else 0.02
            nn.init.normal_(p, 0.0, std)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Logits (B, T, vocab). ``attention_mask`` is accepted for the Hugging Face calling
        convention and not needed: with right padding, causality alone keeps padding from
        every earlier token, and ``causal_lm`` drops the padded positions from the loss."""
        t = input_ids.shape[1]
        x = self.tok(input_ids) + self.pos(torch.arange(t, device=input_ids.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


@register_model(input_shape=(65,), input_dtype=torch.long)  # a chunk: context + 1 bytes
def char_transformer(
    vocab: int = 256, context: int = 64, width: int = 64, layers: int = 2, heads: int = 4
) -> nn.Module:
    """Byte-level causal transformer (nanoGPT-style) for the charlm text."""
    return CharTransformer(vocab=vocab, context=context, width=width, layers=layers, heads=heads)
