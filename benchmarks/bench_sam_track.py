"""A tracked frame with SAM, split into its parts, against the full automatic generator (issue 12).

One run, one process, the real SAM architecture (random weights: speed does not depend on
the weights) on a 640 x 480 frame of a generated posed RGB-D scene:

* **tracked frame**: :func:`lift3d.track.track_frame` on frame 1, with the tracker's state
  after frame 0 labelled by the weight-free classical segmenter, so tracking already covers
  most of the image (as on every frame after the first of a real run). Its time is split
  into the image embedding (``set_image``: one per frame), the prompts (the decoder calls
  of ``prompt``), re-seeding (``auto_masks`` on the unmasked regions: only the grid points
  that fall there are decoded) and the rest (carrying labels through the matches, K-Means,
  overlaps, 3D memory);
* **full generator**: segment-anything's own ``SamAutomaticMaskGenerator.generate`` on the
  same frame (its own embedding, 32 x 32 grid points decoded, RLEs): what re-seeding every
  frame from the generator cost before.

Wall seconds and, in brackets, this process's CPU seconds (the figure to trust on a shared,
loaded machine). Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_sam_track.py [--model vit_b] [--device cpu]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_stages import Clock  # wall and CPU seconds per named part (same folder)


def timed(obj, method: str, clock: Clock, name: str) -> None:
    """Time every call of ``obj.method`` under ``name`` (the real method runs unchanged)."""
    real = getattr(obj, method)

    def wrapper(*args, **kwargs):
        with clock(name):
            return real(*args, **kwargs)

    setattr(obj, method, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="vit_b", help="tiny | vit_b | vit_l | vit_h")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np
    import torch
    from segment_anything import SamAutomaticMaskGenerator

    from lift3d.geometry import build_geometry
    from lift3d.io import load_scene
    from lift3d.segment.classical import ClassicalSegmenter
    from lift3d.segment.sam import SamSegmenter
    from lift3d.segment.sam_checkpoint import write_random_checkpoint
    from lift3d.synth import make_scene
    from lift3d.track import TrackConfig, start, track_frame

    work = Path(tempfile.mkdtemp(prefix="bench_sam_track_"))
    scene_dir = make_scene(work / "scene", seed=args.seed, n_frames=30, width=args.width,
                           height=args.height)
    scene = load_scene(scene_dir, max_frames=2)  # two consecutive frames of a 30-frame orbit
    geometry = build_geometry("rgbd")(scene)
    images = [scene.frames[t].image for t in range(2)]
    cfg = TrackConfig()

    ckpt = write_random_checkpoint(work / f"sam_{args.model}.pth", args.model)
    sam = SamSegmenter.from_checkpoint(ckpt, device=args.device)
    _, state = start(images[0], geometry, ClassicalSegmenter(), cfg)
    covered = float((state.labels > 0).mean())

    clock = Clock()
    predictor = sam.predictor
    timed(predictor, "set_image", clock, "embedding")
    timed(sam, "prompt", clock, "prompt (incl. embedding)")
    timed(sam, "auto_masks", clock, "re-seed (incl. embedding)")
    grid0 = sam.n_grid_points
    with torch.inference_mode(), clock("tracked frame"):
        labels, _, _ = track_frame(state, 1, images[1], geometry, sam, cfg)
    grid = sam.n_grid_points - grid0
    unmasked = float((labels == 0).mean())

    # Random weights cannot track (their prompted masks are noise, so more is left to
    # re-seed than a real model leaves): re-seeding is timed again on the region the
    # weight-free tracker leaves unmasked on the same frame, on the same cached embedding.
    from lift3d.track import reseed_area, unmasked_region

    labels_c, _, _ = track_frame(state, 1, images[1], geometry, ClassicalSegmenter(), cfg)
    where = unmasked_region(labels_c, int(reseed_area(cfg, geometry) * labels_c.size))
    grid1 = sam.n_grid_points
    with torch.inference_mode(), clock("re-seed, tracked coverage"):
        sam.auto_masks(images[1], where=where)
    grid_c = sam.n_grid_points - grid1

    gen = SamAutomaticMaskGenerator(sam.model)
    with torch.inference_mode(), clock("full generator"):
        records = gen.generate(images[1])

    def part(name: str, minus: tuple[str, ...] = ()) -> tuple[float, float]:
        w = clock.wall.get(name, 0.0) - sum(clock.wall.get(m, 0.0) for m in minus)
        c = clock.cpu.get(name, 0.0) - sum(clock.cpu.get(m, 0.0) for m in minus)
        return w, c

    # the embedding runs inside whichever of prompt / auto_masks sees the frame first
    emb = part("embedding")
    inner = ("prompt (incl. embedding)", "re-seed (incl. embedding)")
    prompt_w, prompt_c = part("prompt (incl. embedding)")
    reseed_w, reseed_c = part("re-seed (incl. embedding)")
    prompt = (prompt_w, prompt_c)
    reseed = (reseed_w, reseed_c)
    # subtract the embedding from the call that ran it (set_image is cached after the first)
    if prompt_w >= emb[0]:
        prompt = (prompt_w - emb[0], prompt_c - emb[1])
    else:
        reseed = (reseed_w - emb[0], reseed_c - emb[1])
    total = part("tracked frame")
    rest = part("tracked frame", inner)
    full = part("full generator")
    reseed_c = part("re-seed, tracked coverage")
    total_c = (total[0] - reseed[0] + reseed_c[0], total[1] - reseed[1] + reseed_c[1])
    rows = [("embedding (set_image)", emb), ("prompts (decoder)", prompt),
            (f"re-seeding ({grid} grid points decoded)", reseed), ("rest of the tracker", rest),
            ("tracked frame, total", total),
            (f"re-seeding, tracked coverage ({grid_c} points)", reseed_c),
            ("tracked frame, tracked coverage", total_c),
            (f"full automatic generator ({len(records)} masks)", full)]
    print(f"SAM {args.model} on {args.device}, {args.width}x{args.height}, torch threads "
          f"{torch.get_num_threads()}; tracked pixels before re-seeding cover {covered:.0%} of "
          f"frame 0, {unmasked:.0%} of frame 1 left unlabelled with random SAM weights, "
          f"{where.mean():.0%} left to re-seed by the tracker with the classical segmenter")
    print(f"{'part':<48} {'wall s':>8} {'(cpu s)':>9} {'x embedding':>12}")
    for name, (w, c) in rows:
        print(f"{name:<48} {w:8.2f} ({c:7.2f}) {w / max(emb[0], 1e-9):12.2f}")
    print(f"tracked frame / full generator: {total[0] / full[0]:.3f} wall, "
          f"{total[1] / full[1]:.3f} cpu; at tracked coverage {total_c[0] / full[0]:.3f} wall, "
          f"{total_c[1] / full[1]:.3f} cpu ({total_c[0] / emb[0]:.2f}x one embedding)")
    np.save(work / "labels.npy", labels)


if __name__ == "__main__":
    main()
