"""MASt3R output heads: the DPT head (3D points + confidence) and the MLP local-feature head
(descriptors + descriptor confidence), together "catmlp+dpt", and their post-processing.

Feature maps are ``(B, C, H, W)``; decoder token lists hold ``(B, N, C)`` tensors, the
encoder output first and then one entry per decoder block (see ``Mast3rNet``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lift3d.geometry.mast3r.blocks import Mlp


class ResidualConvUnit(nn.Module):
    """x + conv2(relu(conv1(relu(x))))."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FeatureFusionBlock(nn.Module):
    """Fuse a coarser path with a skip feature, refine, upsample x2, project (1x1)."""

    def __init__(self, features: int):
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, 1, bias=True)
        self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class Scratch(nn.Module):
    """3x3 projections of the four reassembled levels to ``features`` channels, and the four
    fusion blocks. ``layer_rn`` lists the same four convolutions as ``layerK_rn`` (the
    released checkpoint stores both names)."""

    def __init__(self, in_dims: list[int], features: int):
        super().__init__()
        convs = [nn.Conv2d(d, features, 3, padding=1, bias=False) for d in in_dims]
        self.layer1_rn, self.layer2_rn, self.layer3_rn, self.layer4_rn = convs
        self.layer_rn = nn.ModuleList(convs)
        self.refinenet1 = FeatureFusionBlock(features)
        self.refinenet2 = FeatureFusionBlock(features)
        self.refinenet3 = FeatureFusionBlock(features)
        self.refinenet4 = FeatureFusionBlock(features)


class _Upsample2x(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class DPT(nn.Module):
    """Dense prediction transformer head over four hooked token layers.

    hooks: indices into the token list; dim_tokens: their channel counts.
    Output: (B, num_channels, H, W) at the input image resolution.
    """

    def __init__(
        self,
        hooks: list[int],
        dim_tokens: list[int],
        num_channels: int,
        patch_size: int = 16,
        layer_dims: tuple[int, ...] = (96, 192, 384, 768),
        feature_dim: int = 256,
        last_dim: int = 128,
    ):
        super().__init__()
        self.hooks = list(hooks)
        self.patch_size = patch_size
        self.scratch = Scratch(list(layer_dims), feature_dim)
        self.head = nn.Sequential(
            nn.Conv2d(feature_dim, feature_dim // 2, 3, padding=1),
            _Upsample2x(),
            nn.Conv2d(feature_dim // 2, last_dim, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(last_dim, num_channels, 1),
        )
        d0, d1, d2, d3 = layer_dims
        # reassemble: 1x1 projection, then resample the 1/16 grid to 1/4, 1/8, 1/16, 1/32
        self.act_postprocess = nn.ModuleList([
            nn.Sequential(nn.Conv2d(dim_tokens[0], d0, 1), nn.ConvTranspose2d(d0, d0, 4, 4)),
            nn.Sequential(nn.Conv2d(dim_tokens[1], d1, 1), nn.ConvTranspose2d(d1, d1, 2, 2)),
            nn.Sequential(nn.Conv2d(dim_tokens[2], d2, 1)),
            nn.Sequential(nn.Conv2d(dim_tokens[3], d3, 1), nn.Conv2d(d3, d3, 3, 2, padding=1)),
        ])

    def forward(self, tokens: list[torch.Tensor], hw: tuple[int, int]) -> torch.Tensor:
        H, W = hw
        nh, nw = H // self.patch_size, W // self.patch_size
        levels = []
        for k, hook in enumerate(self.hooks):
            t = tokens[hook]
            x = t.transpose(1, 2).reshape(t.shape[0], t.shape[2], nh, nw)
            levels.append(self.scratch.layer_rn[k](self.act_postprocess[k](x)))
        s = self.scratch
        # the 1/32 level upsampled can exceed the 1/16 grid for odd sizes: crop it
        p4 = s.refinenet4(levels[3])[:, :, : levels[2].shape[2], : levels[2].shape[3]]
        p3 = s.refinenet3(p4, levels[2])
        p2 = s.refinenet2(p3, levels[1])
        p1 = s.refinenet1(p2, levels[0])
        return self.head(p1)


@dataclass(frozen=True)
class OutputModes:
    """Output activations (the checkpoint's ``depth_mode``, ``conf_mode``,
    ``desc_conf_mode``): each (kind, vmin, vmax)."""

    depth_mode: tuple = ("exp", -float("inf"), float("inf"))
    conf_mode: tuple = ("exp", 1.0, float("inf"))
    desc_conf_mode: tuple = ("exp", 0.0, float("inf"))


def activate_points(xyz: torch.Tensor, mode: tuple) -> torch.Tensor:
    """(..., 3) raw -> points: direction times f(|raw|), f = expm1 (exp), square or identity."""
    kind, vmin, vmax = mode
    if kind == "linear":
        return xyz if (vmin, vmax) == (-float("inf"), float("inf")) else xyz.clip(vmin, vmax)
    if vmin != -float("inf") or vmax != float("inf"):
        raise ValueError(f"bounded depth_mode {mode} is not supported")
    d = xyz.norm(dim=-1, keepdim=True)
    xyz = xyz / d.clip(min=1e-8)
    if kind == "square":
        return xyz * d.square()
    if kind == "exp":
        return xyz * torch.expm1(d)
    raise ValueError(f"unknown depth_mode {kind!r}")


def activate_conf(x: torch.Tensor, mode: tuple) -> torch.Tensor:
    """(...) raw -> confidence: vmin + exp(x) clipped to vmax - vmin (exp) or a sigmoid."""
    kind, vmin, vmax = mode
    if kind == "exp":
        return vmin + x.exp().clip(max=vmax - vmin)
    if kind == "sigmoid":
        return (vmax - vmin) * torch.sigmoid(x) + vmin
    raise ValueError(f"unknown conf_mode {kind!r}")


class LocalFeatureDPTHead(nn.Module):
    """"catmlp+dpt": DPT for points + confidence; an MLP on the concatenated encoder and
    last decoder tokens, pixel-shuffled to full resolution, for descriptors + confidence.

    Output of :meth:`forward`: dict with ``pts3d`` (B, H, W, 3), ``conf`` (B, H, W),
    ``desc`` (B, H, W, desc_dim) unit vectors, ``desc_conf`` (B, H, W).
    """

    def __init__(
        self,
        enc_dim: int,
        dec_dim: int,
        dec_depth: int,
        desc_dim: int,
        patch_size: int = 16,
        modes: OutputModes = OutputModes(),
        hidden_dim_factor: float = 4.0,
    ):
        super().__init__()
        self.patch_size = patch_size
        self.desc_dim = desc_dim
        self.modes = modes
        hooks = [0, dec_depth * 2 // 4, dec_depth * 3 // 4, dec_depth]
        self.dpt = DPT(hooks, [enc_dim, dec_dim, dec_dim, dec_dim], num_channels=4,
                       patch_size=patch_size)
        idim = enc_dim + dec_dim
        self.head_local_features = Mlp(
            idim, int(hidden_dim_factor * idim), (desc_dim + 1) * patch_size**2
        )

    def forward(self, tokens: list[torch.Tensor], hw: tuple[int, int]) -> dict[str, torch.Tensor]:
        H, W = hw
        p = self.patch_size
        pts_conf = self.dpt(tokens, hw)  # (B, 4, H, W)
        cat = torch.cat([tokens[0], tokens[-1]], dim=-1)  # (B, N, enc + dec)
        B = cat.shape[0]
        feat = self.head_local_features(cat).transpose(1, 2).reshape(B, -1, H // p, W // p)
        feat = F.pixel_shuffle(feat, p)  # (B, desc_dim + 1, H, W)
        fmap = torch.cat([pts_conf, feat], dim=1).permute(0, 2, 3, 1)
        d = self.desc_dim
        desc = fmap[..., 4 : 4 + d]
        return {
            "pts3d": activate_points(fmap[..., 0:3], self.modes.depth_mode),
            "conf": activate_conf(fmap[..., 3], self.modes.conf_mode),
            "desc": desc / desc.norm(dim=-1, keepdim=True),
            "desc_conf": activate_conf(fmap[..., 4 + d], self.modes.desc_conf_mode),
        }
