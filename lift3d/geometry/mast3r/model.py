"""The MASt3R inference network (encoder, two-branch decoder, catmlp+dpt heads).

lift3d's own implementation, written from the architecture's description (CroCo v2 ViT
encoder with 2D RoPE, DUSt3R's asymmetric cross-attention decoder, MASt3R's local-feature
head). Module and parameter names mirror the released checkpoint
``MASt3R_ViTLarge_BaseDecoder_512_catmlpdpt_metric`` so that its state dict loads with
``strict=True``; :meth:`Mast3rNet.from_checkpoint` is the one place that reads weights.

Shapes: images (B, 3, H, W) float in [-1, 1] (see ``preprocess.py``), H and W multiples of
16; per-view outputs are dicts of (B, H, W, ...) tensors (see :class:`LocalFeatureDPTHead`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lift3d.geometry.mast3r.blocks import ATTN_IMPLS, Block, DecoderBlock, PatchEmbed, RoPE2D
from lift3d.geometry.mast3r.heads import LocalFeatureDPTHead, OutputModes

INF = float("inf")

#: Constructor arguments of the released MASt3R ViT-Large/ViT-Base 512 metric checkpoint.
MAST3R_VITL_512_ARGS: dict = dict(
    pos_embed="RoPE100",
    patch_embed_cls="PatchEmbedDust3R",
    img_size=(512, 512),
    head_type="catmlp+dpt",
    output_mode="pts3d+desc24",
    depth_mode=("exp", -INF, INF),
    conf_mode=("exp", 1, INF),
    enc_embed_dim=1024,
    enc_depth=24,
    enc_num_heads=16,
    dec_embed_dim=768,
    dec_depth=12,
    dec_num_heads=12,
    two_confs=True,
    desc_conf_mode=("exp", 0, INF),
    landscape_only=False,
)


class Mast3rNet(nn.Module):
    """MASt3R: two images in, per-view pointmaps (both in view 1's camera frame),
    confidences, dense local descriptors and descriptor confidences out.

    The keyword arguments are those of the official model (``model_args`` of the golden
    manifest). ``patch_embed_cls`` may be ``PatchEmbedDust3R`` or ``ManyAR_PatchEmbed`` (same
    weights; this implementation handles any aspect ratio); ``landscape_only`` must be False
    (portrait images run as they are). ``img_size`` only documents the training resolution.
    """

    def __init__(
        self,
        enc_embed_dim: int = 1024,
        enc_depth: int = 24,
        enc_num_heads: int = 16,
        dec_embed_dim: int = 768,
        dec_depth: int = 12,
        dec_num_heads: int = 12,
        mlp_ratio: float = 4.0,
        patch_size: int = 16,
        pos_embed: str = "RoPE100",
        head_type: str = "catmlp+dpt",
        output_mode: str = "pts3d+desc24",
        depth_mode: tuple = ("exp", -INF, INF),
        conf_mode: tuple = ("exp", 1, INF),
        desc_conf_mode: tuple = ("exp", 0, INF),
        two_confs: bool = True,
        patch_embed_cls: str = "PatchEmbedDust3R",
        img_size: tuple[int, int] | int = (512, 512),
        landscape_only: bool = False,
        desc_mode: str = "norm",
    ):
        super().__init__()
        if not pos_embed.startswith("RoPE"):
            raise ValueError(f"pos_embed {pos_embed!r}: only RoPE<freq> is supported")
        if head_type != "catmlp+dpt" or not output_mode.startswith("pts3d+desc"):
            raise ValueError(f"head {head_type!r}/{output_mode!r}: only catmlp+dpt pts3d+desc")
        if not two_confs or desc_mode != "norm":
            raise ValueError("only two_confs=True with normalised descriptors is supported")
        if patch_embed_cls not in ("PatchEmbedDust3R", "ManyAR_PatchEmbed"):
            raise ValueError(f"unknown patch_embed_cls {patch_embed_cls!r}")
        if landscape_only:
            raise ValueError("landscape_only=True is not supported; portrait images run as is")
        if dec_depth <= 9:
            raise ValueError("the catmlp+dpt head needs dec_depth > 9")
        self.enc_embed_dim = enc_embed_dim
        self.dec_embed_dim = dec_embed_dim
        self.dec_depth = dec_depth
        self.patch_size = patch_size
        self.desc_dim = int(output_mode[len("pts3d+desc"):])

        rope = RoPE2D(freq=float(pos_embed[len("RoPE"):]))
        self.patch_embed = PatchEmbed(patch_size, 3, enc_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec_embed_dim))  # training only
        self.enc_blocks = nn.ModuleList(
            [Block(enc_embed_dim, enc_num_heads, rope, mlp_ratio) for _ in range(enc_depth)]
        )
        self.enc_norm = nn.LayerNorm(enc_embed_dim, eps=1e-6)
        self.decoder_embed = nn.Linear(enc_embed_dim, dec_embed_dim, bias=True)
        self.dec_blocks = nn.ModuleList(
            [DecoderBlock(dec_embed_dim, dec_num_heads, rope, mlp_ratio) for _ in range(dec_depth)]
        )
        self.dec_norm = nn.LayerNorm(dec_embed_dim, eps=1e-6)
        self.dec_blocks2 = nn.ModuleList(
            [DecoderBlock(dec_embed_dim, dec_num_heads, rope, mlp_ratio) for _ in range(dec_depth)]
        )
        modes = OutputModes(tuple(depth_mode), tuple(conf_mode), tuple(desc_conf_mode))
        head_args = (enc_embed_dim, dec_embed_dim, dec_depth, self.desc_dim, patch_size, modes)
        self.downstream_head1 = LocalFeatureDPTHead(*head_args)
        self.downstream_head2 = LocalFeatureDPTHead(*head_args)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu",
                        **model_args) -> Mast3rNet:
        """Build with ``model_args`` (default: the released ViT-L 512 configuration) and load
        the weights of ``path`` (official ``.pth`` or hub ``.safetensors``) strictly.

        Raises :class:`~lift3d.errors.CheckpointError` if the file is unreadable or its
        tensors do not match the architecture.
        """
        from lift3d.geometry.mast3r.checkpoint import load_into

        args = {**MAST3R_VITL_512_ARGS, **model_args}
        with torch.device("meta"):
            net = cls(**args)
        load_into(net, path)
        return net.to(device).eval()

    @classmethod
    def from_pretrained(cls, checkpoint: str | Path | None = None,
                        device: str | torch.device = "cpu", **model_args) -> Mast3rNet:
        """The released checkpoint from ``checkpoint`` (a path), ``$LIFT3D_MAST3R_CHECKPOINT``,
        the user cache, or a download (unless ``LIFT3D_OFFLINE=1``); ``model_args`` override
        the released configuration (for other checkpoints of the same family)."""
        from lift3d.geometry.mast3r.checkpoint import resolve_mast3r_checkpoint

        path = resolve_mast3r_checkpoint(checkpoint)
        return cls.from_checkpoint(path, device=device, **model_args)

    def set_attention(self, impl: str) -> Mast3rNet:
        """Select the attention implementation of every block: ``sdpa`` or ``torch``."""
        if impl not in ATTN_IMPLS:
            raise ValueError(f"unknown attention implementation {impl!r}; one of {ATTN_IMPLS}")
        for m in self.modules():
            if hasattr(m, "impl"):
                m.impl = impl
        return self

    # ------------------------------------------------------------------ forward
    def encode(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """img: (B, 3, H, W) -> tokens (B, N, enc_dim) after enc_norm, positions (B, N, 2)."""
        x, pos = self.patch_embed(img)
        for blk in self.enc_blocks:
            x = blk(x, pos)
        return self.enc_norm(x), pos

    def decode(self, f1, pos1, f2, pos2) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Both decoder branches; each step reads the other branch's previous tokens.

        Returns per view the token list [encoder output, block 1, ..., block D (dec_norm)].
        """
        out1, out2 = [f1], [f2]
        x1, x2 = self.decoder_embed(f1), self.decoder_embed(f2)
        for blk1, blk2 in zip(self.dec_blocks, self.dec_blocks2, strict=True):
            x1, x2 = blk1(x1, x2, pos1, pos2), blk2(x2, x1, pos2, pos1)
            out1.append(x1)
            out2.append(x2)
        out1[-1] = self.dec_norm(out1[-1])
        out2[-1] = self.dec_norm(out2[-1])
        return out1, out2

    def forward_encoded(self, f1, pos1, hw1, f2, pos2, hw2) -> tuple[dict, dict]:
        """Decoder and heads from encoder outputs (so one frame's encoding serves many pairs).

        Returns (pred1, pred2): pred1 has ``pts3d``, ``conf``, ``desc``, ``desc_conf``; pred2
        has ``pts3d_in_other_view`` (view 2's points in view 1's camera frame) instead of
        ``pts3d``. Shapes (B, H, W[, 3 | desc_dim]).
        """
        dec1, dec2 = self.decode(f1, pos1, f2, pos2)
        with torch.autocast(device_type=f1.device.type, enabled=False):
            pred1 = self.downstream_head1([t.float() for t in dec1], hw1)
            pred2 = self.downstream_head2([t.float() for t in dec2], hw2)
        pred2["pts3d_in_other_view"] = pred2.pop("pts3d")
        return pred1, pred2

    def forward(self, img1: torch.Tensor, img2: torch.Tensor) -> tuple[dict, dict]:
        """img1: (B, 3, H1, W1), img2: (B, 3, H2, W2) in [-1, 1] -> (pred1, pred2)."""
        if img1.shape == img2.shape:  # one encoder pass over both views
            f, pos = self.encode(torch.cat([img1, img2]))
            f1, f2 = f.chunk(2)
            pos1, pos2 = pos.chunk(2)
        else:
            f1, pos1 = self.encode(img1)
            f2, pos2 = self.encode(img2)
        return self.forward_encoded(
            f1, pos1, tuple(img1.shape[-2:]), f2, pos2, tuple(img2.shape[-2:])
        )
