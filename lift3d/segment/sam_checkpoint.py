"""SAM architectures and checkpoints: which file, is it intact, which model does it hold.

One place that turns a checkpoint file into a ready ``segment_anything.modeling.Sam``:

* the architecture table (:data:`SAM_ARCHS`): the official ``vit_h``, ``vit_l``, ``vit_b``
  hyper-parameters (as segment-anything's ``build_sam.py`` defines them) and a ``tiny`` one for
  tests and CPU smoke runs with random weights;
* where the file is (:func:`find_sam_checkpoint`, via :func:`lift3d.weights.resolve_checkpoint`:
  ``--sam-checkpoint``, ``$LIFT3D_SAM_CHECKPOINT``, the user cache, the official download);
* whether it is intact (official file names are checked against the official SHA-256);
* which architecture it holds, read from its tensor names and shapes, so a wrong
  ``--sam-model-type`` or a file that is no SAM checkpoint gives one clear error and never a
  silently random model (:func:`load_sam`, strict loading).

Light to import: torch and segment-anything are imported inside the functions that need them,
so ``lift3d info`` can ask where the checkpoint is without loading either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from lift3d.errors import BackendUnavailable, CheckpointError
from lift3d.weights import cache_dir, resolve_checkpoint

if TYPE_CHECKING:
    import torch
    from segment_anything.modeling import Sam

ENV_VAR = "LIFT3D_SAM_CHECKPOINT"
BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything/"


@dataclass(frozen=True)
class SamArch:
    """Hyper-parameters of one SAM architecture (names follow segment-anything's modules).

    encoder_*: the ViT image encoder; image_size: its square input side in pixels (the long
    image side is resized to it); patch_size: pixels per token (embedding side =
    image_size / patch_size); window_size: tokens per side of the windowed-attention blocks;
    prompt_embed_dim: width of the prompt encoder and mask decoder; decoder_*: the two-way
    transformer of the mask decoder; iou_head_hidden_dim: width of the predicted-IoU head.
    """

    encoder_embed_dim: int
    encoder_depth: int
    encoder_num_heads: int
    encoder_global_attn_indexes: tuple[int, ...]
    image_size: int = 1024
    patch_size: int = 16
    window_size: int = 14
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    iou_head_hidden_dim: int = 256


SAM_ARCHS: dict[str, SamArch] = {
    # The official models (segment_anything/build_sam.py).
    "vit_h": SamArch(1280, 32, 16, (7, 15, 23, 31)),
    "vit_l": SamArch(1024, 24, 16, (5, 11, 17, 23)),
    "vit_b": SamArch(768, 12, 12, (2, 5, 8, 11)),
    # Not a released model: the same modules, small enough that a random-weight checkpoint
    # (~1 MB) builds, loads and runs in well under a second on a CPU. 256-px input (16 x 16
    # tokens, 64 x 64 low-res masks), 2 encoder blocks (one windowed, one global), a 64-wide
    # two-way transformer. Its tensor shapes differ from every official model's, so a tiny
    # file is recognised as such.
    "tiny": SamArch(
        encoder_embed_dim=32,
        encoder_depth=2,
        encoder_num_heads=2,
        encoder_global_attn_indexes=(1,),
        image_size=256,
        window_size=4,
        prompt_embed_dim=64,
        mask_in_chans=8,
        decoder_mlp_dim=128,
        decoder_num_heads=2,
        iou_head_hidden_dim=64,
    ),
}
MODEL_TYPES = tuple(SAM_ARCHS)
# ImageNet statistics in 0-255 units, as every released SAM normalises its input.
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class OfficialFile:
    """An official SAM checkpoint: file name, size in bytes, SHA-256 of the whole file.

    The hex in the file name is the start of the file's MD5, not of its SHA-256 (unlike
    torch.hub's convention); the SHA-256 digests below are the ones published for these files
    by several independent download scripts (e.g. ``sha256sum -c`` lines in Dockerfiles).
    """

    filename: str
    sha256: str
    size: int | None = None

    @property
    def url(self) -> str:
        return BASE_URL + self.filename


OFFICIAL_FILES: dict[str, OfficialFile] = {
    "vit_h": OfficialFile(
        "sam_vit_h_4b8939.pth",
        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
        2564550879,
    ),
    "vit_l": OfficialFile(
        "sam_vit_l_0b3195.pth",
        "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
    ),
    "vit_b": OfficialFile(
        "sam_vit_b_01ec64.pth",
        "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
        375042383,
    ),
}
# The method is defined on ViT-H; it is the file downloaded when nothing else is found.
DEFAULT_MODEL_TYPE = "vit_h"


# ---------------------------------------------------------------------------------------------
# Where the file is


def find_sam_checkpoint(
    explicit: str | Path | None = None,
    model_type: str = "auto",
    download: bool | None = None,
) -> Path:
    """Path of the SAM checkpoint to use; downloads the official file if needed and allowed.

    Order: ``explicit`` (``--sam-checkpoint``), ``$LIFT3D_SAM_CHECKPOINT``, the user cache
    (:func:`lift3d.weights.cache_dir`), then a download of the official file. With
    ``model_type="auto"`` any official file already in the cache is used (vit_h, then vit_l,
    then vit_b) and vit_h is downloaded otherwise. ``download=None``: unless
    ``LIFT3D_OFFLINE=1``. Raises :class:`CheckpointError` saying which file to put where.
    """
    _check_model_type(model_type)
    if explicit is not None and not Path(explicit).expanduser().is_file():
        names = ", ".join(f.filename for f in OFFICIAL_FILES.values())
        raise CheckpointError(
            "SAM checkpoint file not found", Path(explicit).expanduser(),
            f"check the path given to --sam-checkpoint (official files: {names}, "
            f"from {BASE_URL})",
        )
    if model_type == "tiny":
        if explicit is None and not _env_checkpoint():
            raise CheckpointError(
                "the 'tiny' SAM has no released weights", None,
                "pass --sam-checkpoint PATH to a file written by "
                "lift3d.segment.sam_checkpoint.write_random_checkpoint(PATH, 'tiny')",
            )
        official = OFFICIAL_FILES[DEFAULT_MODEL_TYPE]
    elif model_type == "auto":
        if explicit is None and not _env_checkpoint():
            for kind in ("vit_h", "vit_l", "vit_b"):
                cached = cache_dir() / OFFICIAL_FILES[kind].filename
                if cached.is_file():
                    return cached
        official = OFFICIAL_FILES[DEFAULT_MODEL_TYPE]
    else:
        official = OFFICIAL_FILES[model_type]
    return resolve_checkpoint(
        official.filename, [official.url], explicit=explicit, env_var=ENV_VAR, download=download
    )


def _env_checkpoint() -> str:
    import os

    return os.environ.get(ENV_VAR, "")


def _check_model_type(model_type: str) -> None:
    if model_type != "auto" and model_type not in SAM_ARCHS:
        raise CheckpointError(
            f"unknown SAM model type {model_type!r}", None,
            f"choose one of {', '.join(MODEL_TYPES)} or 'auto' (read from the file)",
        )


# ---------------------------------------------------------------------------------------------
# Is it intact


def verify_official_file(path: str | Path) -> None:
    """If ``path`` carries an official SAM file name, check its size and SHA-256.

    Raises :class:`CheckpointError` (corrupt or incomplete download) on a mismatch. Files with
    other names are left alone: their tensors are still checked by :func:`load_sam`.
    Costs one read of the file (about 1-2 s per GB).
    """
    path = Path(path)
    official = next((f for f in OFFICIAL_FILES.values() if f.filename == path.name), None)
    if official is None:
        return
    fix = f"delete it and download it again from {official.url}"
    size = path.stat().st_size
    if official.size is not None and size != official.size:
        raise CheckpointError(
            f"has {size} bytes, the official {official.filename} has {official.size} "
            "(incomplete or corrupt download)", path, fix,
        )
    digest = _sha256(path)
    if digest != official.sha256:
        raise CheckpointError(
            f"SHA-256 {digest[:12]}... differs from the official {official.filename}'s "
            f"{official.sha256[:12]}... (corrupt file, or another model under an official "
            "name)", path, fix + " (or rename it if it is meant to be a different model)",
        )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Building and loading


def build_sam(arch: SamArch | str) -> Sam:
    """A SAM with ``arch``'s hyper-parameters and freshly initialised (random) weights, eval mode.

    Built from segment-anything's own modules exactly as its ``build_sam.py`` does, so the
    parameter names and shapes are the official checkpoints' for vit_h/l/b. Never reads a file.
    """
    from functools import partial

    import torch

    modeling = _import_modeling()
    if isinstance(arch, str):
        _check_model_type(arch)
        arch = SAM_ARCHS[arch]
    tokens = arch.image_size // arch.patch_size
    sam = modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            depth=arch.encoder_depth,
            embed_dim=arch.encoder_embed_dim,
            img_size=arch.image_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=arch.encoder_num_heads,
            patch_size=arch.patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=arch.encoder_global_attn_indexes,
            window_size=arch.window_size,
            out_chans=arch.prompt_embed_dim,
        ),
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=arch.prompt_embed_dim,
            image_embedding_size=(tokens, tokens),
            input_image_size=(arch.image_size, arch.image_size),
            mask_in_chans=arch.mask_in_chans,
        ),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=3,
            transformer=modeling.TwoWayTransformer(
                depth=arch.decoder_depth,
                embedding_dim=arch.prompt_embed_dim,
                mlp_dim=arch.decoder_mlp_dim,
                num_heads=arch.decoder_num_heads,
            ),
            transformer_dim=arch.prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=arch.iou_head_hidden_dim,
        ),
        pixel_mean=list(PIXEL_MEAN),
        pixel_std=list(PIXEL_STD),
    )
    return sam.eval()


def _import_modeling():
    try:
        import segment_anything.modeling as modeling
    except ImportError as err:
        raise BackendUnavailable(
            f"the SAM backend needs the segment-anything package ({err})", None,
            "pip install segment-anything, or use --segmenter classical",
        ) from err
    return modeling


@cache
def arch_signature(model_type: str) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape of ``model_type``'s state dict (built on the meta device: free)."""
    import torch

    with torch.device("meta"):
        sam = build_sam(SAM_ARCHS[model_type])
    return {k: tuple(v.shape) for k, v in sam.state_dict().items()}


def detect_model_type(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """The entry of :data:`SAM_ARCHS` whose names and shapes ``state_dict`` matches, or None."""
    found = {k: tuple(v.shape) for k, v in state_dict.items()}
    return next((t for t in MODEL_TYPES if arch_signature(t) == found), None)


def describe_mismatch(state_dict: Mapping[str, torch.Tensor], model_type: str) -> str:
    """Human summary of how ``state_dict`` differs from ``model_type``'s (first few of each)."""
    want = arch_signature(model_type)
    found = {k: tuple(v.shape) for k, v in state_dict.items()}
    missing = [k for k in want if k not in found]
    extra = [k for k in found if k not in want]
    shapes = [f"{k} {found[k]} != {want[k]}" for k in want if k in found and found[k] != want[k]]
    parts = []
    for label, items in (("missing", missing), ("unexpected", extra), ("shape", shapes)):
        if items:
            more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:3])}{more}")
    return "; ".join(parts) or "no difference"


def check_checkpoint_file(path: str | Path) -> Path:
    """``path`` if it is a non-empty readable file, else a :class:`CheckpointError` naming it
    (cheap: what a run checks before loading anything; :func:`load_sam` reads the tensors)."""
    path = Path(path).expanduser()
    fix = f"download it again from {OFFICIAL_FILES[DEFAULT_MODEL_TYPE].url} (or the vit_l/vit_b file)"
    if not path.is_file():
        raise CheckpointError("SAM checkpoint file not found", path,
                              "check the path given to --sam-checkpoint")
    try:
        with open(path, "rb") as f:
            empty = not f.read(1)
    except OSError as err:
        raise CheckpointError(f"cannot read SAM checkpoint ({err.strerror})", path,
                              "check the file's permissions") from err
    if empty:
        raise CheckpointError("SAM checkpoint file is empty (0 bytes: an interrupted download?)",
                              path, fix)
    return path


def _first_line(err: BaseException) -> str:
    """'Type: first line of the message' (torch's messages can be empty or many lines)."""
    lines = str(err).strip().splitlines()
    return type(err).__name__ + (f": {lines[0][:200]}" if lines else "")


def load_sam(
    path: str | Path, model_type: str = "auto", verify: bool = True
) -> tuple[Sam, str]:
    """Load a SAM checkpoint file into the matching architecture (on the CPU, eval mode).

    path: a state dict saved with ``torch.save`` (the official ``.pth`` layout).
    model_type: ``auto`` (read from the tensor shapes) or one of :data:`MODEL_TYPES`.
    verify: check the SHA-256 of files carrying an official name (:func:`verify_official_file`).
    Returns the model and its model type. Raises :class:`CheckpointError` naming the file when
    it is unreadable, corrupt, not a SAM checkpoint, or of another type than asked for.
    """
    import torch

    path = Path(path)
    _check_model_type(model_type)
    check_checkpoint_file(path)
    if verify:
        verify_official_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for damaged or foreign files
        raise CheckpointError(
            f"cannot be read as a PyTorch checkpoint ({_first_line(err)})", path,
            "the file is damaged or not a SAM .pth file; download it again from "
            f"{OFFICIAL_FILES[DEFAULT_MODEL_TYPE].url} (or the vit_l/vit_b file)",
        ) from err
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise CheckpointError(
            "is not a SAM state dict (expected a mapping of parameter names to tensors)", path,
            "pass the official sam_vit_*.pth file, or a state_dict() saved with torch.save",
        )
    detected = detect_model_type(state)
    if model_type == "auto":
        if detected is None:
            raise CheckpointError(
                f"matches none of the SAM architectures {', '.join(MODEL_TYPES)} "
                f"(against {DEFAULT_MODEL_TYPE}: "
                f"{describe_mismatch(state, DEFAULT_MODEL_TYPE)})", path,
                "pass an official segment-anything checkpoint (sam_vit_h/l/b_*.pth)",
            )
        model_type = detected
    elif detected != model_type:
        if detected is not None:
            raise CheckpointError(
                f"holds a SAM {detected} model, not {model_type}", path,
                f"pass --sam-model-type {detected} (or auto)",
            )
        raise CheckpointError(
            f"does not match SAM {model_type} ({describe_mismatch(state, model_type)})", path,
            "pass the checkpoint of that model type, or --sam-model-type auto",
        )
    # Built on the meta device and handed the loaded tensors (assign=True): no random
    # initialisation to throw away, no second copy of the weights in memory (vit_h: 2.5 GB).
    with torch.device("meta"):
        sam = build_sam(SAM_ARCHS[model_type])
    try:
        sam.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:  # names and shapes matched above; dtypes and the like remain
        raise CheckpointError(f"does not load into SAM {model_type}: {err}", path) from err
    # The two buffers not stored in checkpoints (persistent=False) are constants.
    sam.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(-1, 1, 1), False)
    sam.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(-1, 1, 1), False)
    left = [n for n, t in [*sam.named_parameters(), *sam.named_buffers()] if t.is_meta]
    if left:
        raise CheckpointError(f"left tensors without values: {', '.join(left[:5])}", path)
    return sam.eval(), model_type


def write_random_checkpoint(path: str | Path, model_type: str = "tiny", seed: int = 0) -> Path:
    """Save a SAM of ``model_type`` with random weights as a checkpoint file at ``path``.

    For tests, benchmarks and CPU smoke runs without the real weights; the file has the
    official layout (a plain state dict), so it loads through :func:`load_sam` as a user's
    checkpoint does. Masks from random weights are meaningless but shaped and typed as real
    ones. Returns ``path``.
    """
    import torch

    from lift3d.io.atomic import atomic_path

    torch.manual_seed(seed)
    sam = build_sam(model_type)
    with atomic_path(path) as tmp:
        torch.save(sam.state_dict(), tmp)
    return Path(path)
