"""Transformer building blocks of the MASt3R network: 2D RoPE, attention, ViT blocks.

Written for lift3d from the published architecture (CroCo v2 / DUSt3R / MASt3R papers).
Module and parameter names follow the released checkpoint so that its state dict loads
with ``strict=True``.

Token tensors are ``(B, N, C)``; positions are ``(B, N, 2)`` integer (row, column) patch
indices. Attention runs on ``(B, heads, N, head_dim)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Attention implementation used by every block: ``"sdpa"`` (torch's fused
#: scaled_dot_product_attention) or ``"torch"`` (the plain softmax(q k^T / sqrt(d)) v
#: reference). Tests compare the two; see :func:`attention`.
ATTN_IMPLS = ("sdpa", "torch")


def attention_torch(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Plain scaled dot-product attention, the reference for the fused path.

    q: (B, h, Nq, d); k, v: (B, h, Nk, d) -> (B, h, Nq, d).
    """
    scale = q.shape[-1] ** -0.5
    attn = (q @ k.transpose(-2, -1)) * scale
    return attn.softmax(dim=-1) @ v


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, impl: str) -> torch.Tensor:
    """Scaled dot-product attention with implementation ``impl`` (see :data:`ATTN_IMPLS`)."""
    if impl == "sdpa":
        return F.scaled_dot_product_attention(q, k, v)
    if impl == "torch":
        return attention_torch(q, k, v)
    raise ValueError(f"unknown attention implementation {impl!r}; choose one of {ATTN_IMPLS}")


class RoPE2D(nn.Module):
    """2D rotary position embedding: the first half of each head's channels rotates with the
    patch row, the second half with the patch column (1D RoPE with base frequency ``freq``).

    Holds no parameters (the checkpoint has none); cos/sin tables are cached per
    (length, dim, device, dtype).
    """

    def __init__(self, freq: float = 100.0):
        super().__init__()
        self.base = float(freq)
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _cos_sin(self, d: int, n: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (d, n, device, dtype)
        if key not in self._cache:
            inv_freq = 1.0 / (self.base ** (torch.arange(0, d, 2, device=device).float() / d))
            t = torch.arange(n, device=device, dtype=inv_freq.dtype)
            ang = torch.outer(t, inv_freq).to(dtype)
            ang = torch.cat((ang, ang), dim=-1)  # (n, d)
            self._cache[key] = (ang.cos(), ang.sin())
        return self._cache[key]

    @staticmethod
    def _rotate_1d(x: torch.Tensor, pos: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        # x: (B, h, N, d); pos: (B, N) -> angles looked up per token, broadcast over heads
        c = cos[pos][:, None]
        s = sin[pos][:, None]
        half = x.shape[-1] // 2
        rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * c + rot * s

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """tokens: (B, h, N, d) with d divisible by 4; positions: (B, N, 2) int -> same shape."""
        d = tokens.shape[-1] // 2
        n = int(positions.max()) + 1
        cos, sin = self._cos_sin(d, n, tokens.device, tokens.dtype)
        y, x = tokens.chunk(2, dim=-1)
        y = self._rotate_1d(y, positions[..., 0], cos, sin)
        x = self._rotate_1d(x, positions[..., 1], cos, sin)
        return torch.cat((y, x), dim=-1)


class Mlp(nn.Module):
    """Linear -> GELU (exact) -> Linear."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection and RoPE on queries and keys."""

    def __init__(self, dim: int, num_heads: int, rope: RoPE2D):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope
        self.impl = "sdpa"

    def forward(self, x: torch.Tensor, xpos: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, h, N, d)
        q = self.rope(q, xpos)
        k = self.rope(k, xpos)
        out = attention(q, k, v, self.impl)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class CrossAttention(nn.Module):
    """Multi-head cross-attention (queries from one view, keys/values from the other)."""

    def __init__(self, dim: int, num_heads: int, rope: RoPE2D):
        super().__init__()
        self.num_heads = num_heads
        self.projq = nn.Linear(dim, dim, bias=True)
        self.projk = nn.Linear(dim, dim, bias=True)
        self.projv = nn.Linear(dim, dim, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope
        self.impl = "sdpa"

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        return x.reshape(B, N, self.num_heads, C // self.num_heads).transpose(1, 2)

    def forward(self, query, key, value, qpos, kpos) -> torch.Tensor:
        B, Nq, C = query.shape
        q = self.rope(self._heads(self.projq(query)), qpos)
        k = self.rope(self._heads(self.projk(key)), kpos)
        v = self._heads(self.projv(value))
        out = attention(q, k, v, self.impl)
        return self.proj(out.transpose(1, 2).reshape(B, Nq, C))


def _layer_norm(dim: int) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=1e-6)


class Block(nn.Module):
    """Pre-norm ViT encoder block: x + attn(norm1(x)); x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, rope: RoPE2D, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = _layer_norm(dim)
        self.attn = Attention(dim, num_heads, rope)
        self.norm2 = _layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, xpos: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), xpos)
        return x + self.mlp(self.norm2(x))


class DecoderBlock(nn.Module):
    """Decoder block: self-attention, cross-attention to the other view's (normalised)
    tokens, MLP; each pre-norm with a residual."""

    def __init__(self, dim: int, num_heads: int, rope: RoPE2D, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = _layer_norm(dim)
        self.attn = Attention(dim, num_heads, rope)
        self.cross_attn = CrossAttention(dim, num_heads, rope)
        self.norm2 = _layer_norm(dim)
        self.norm3 = _layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.norm_y = _layer_norm(dim)

    def forward(self, x, y, xpos, ypos) -> torch.Tensor:
        """x: (B, Nx, C) this view; y: (B, Ny, C) the other view -> (B, Nx, C)."""
        x = x + self.attn(self.norm1(x), xpos)
        y_ = self.norm_y(y)
        x = x + self.cross_attn(self.norm2(x), y_, y_, xpos, ypos)
        return x + self.mlp(self.norm3(x))


class PatchEmbed(nn.Module):
    """Non-overlapping 16x16 patches -> tokens, plus their (row, column) grid positions."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """img: (B, 3, H, W), H and W multiples of the patch size -> tokens (B, N, C),
        positions (B, N, 2) int64 (row, column), N = (H/16)(W/16) in row-major order."""
        B, _, H, W = img.shape
        p = self.patch_size
        if H % p or W % p:
            raise ValueError(f"image size {H}x{W} is not a multiple of the patch size {p}")
        x = self.proj(img)
        h, w = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        rows = torch.arange(h, device=img.device)
        cols = torch.arange(w, device=img.device)
        pos = torch.cartesian_prod(rows, cols).view(1, h * w, 2).expand(B, -1, 2)
        return x, pos
