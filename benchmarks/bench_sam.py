"""SAM-side cost per frame for the tracker: one embedding, then N prompt sets (one per ID).

Compares, on one real frame (DAVIS 854 x 480) and random-weight models (speed does not depend
on the weights):

* ``predict loop``: the textbook use, ``SamPredictor.predict`` once per ID (multimask, three
  masks upsampled per call, best kept by predicted IoU);
* ``one-by-one``: ``SamSegmenter.prompt`` once per ID (B = 1);
* ``batched``: ``SamSegmenter.prompt`` once with all N sets in one decoder call;
* ``default chunks``: ``SamSegmenter.prompt`` once, decoded in chunks of the default
  ``prompt_batch_size`` (64 on a GPU, 16 on the CPU): what the tracker gets.

Each on top of one image embedding (``set_image``), timed separately after a warm-up run.
Every variant reuses the embedding; re-embedding per ID would add (N - 1) x embed.

    PYTHONPATH=. python benchmarks/bench_sam.py --models tiny vit_b --n-prompts 16 --auto

With ``--auto`` it also times ``auto_masks`` (the tracker reseeds from automatic masks)
against segment-anything's own generator on the same cached embedding. Random weights predict
low IoUs, so nearly every mask fails ``pred_iou_thresh`` and the IoU-first generator's gain
here is an upper bound; with real weights the masks that pass are still upsampled.

Prints one table row per model and variant and writes JSON with ``--json PATH``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from segment_anything import SamAutomaticMaskGenerator  # noqa: E402

from lift3d.segment.sam import SamConfig, SamSegmenter  # noqa: E402
from lift3d.segment.sam_checkpoint import write_random_checkpoint  # noqa: E402

FRAME = Path("data/davis2016_480p/JPEGImages/480p/blackswan/00000.jpg")


def load_frame() -> np.ndarray:
    """The DAVIS frame from ../shared (or $LIFT3D_SHARED); a synthetic 854 x 480 otherwise."""
    import os

    root = Path(os.environ.get("LIFT3D_SHARED", REPO.parent / "shared"))
    if (root / FRAME).is_file():
        return np.asarray(Image.open(root / FRAME).convert("RGB"))
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(480, 854, 3), dtype=np.uint8)


def prompts(n_sets: int, n_points: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    pts = rng.uniform((0, 0), (w, h), size=(n_sets, n_points, 2)).astype(np.float32)
    labels = np.ones((n_sets, n_points), np.int32)
    labels[:, n_points // 2 + 1 :] = 0  # a few negatives when there are enough points
    return pts, labels


def timed(fn, repeats: int, warmup: bool = True) -> tuple[float, float]:
    """Median wall seconds and median process CPU seconds (all threads) of ``fn()`` over
    ``repeats`` runs, after one warm-up run. CPU seconds are the steadier figure on a
    machine shared with other work."""
    if warmup:
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def bench_model(
    model_type: str, n_sets: int, n_points: int, repeats: int, embed_repeats: int, device: str,
    auto: bool = False,
) -> dict:
    img = load_frame()
    h, w = img.shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = write_random_checkpoint(Path(tmp) / f"{model_type}_random.pth", model_type)
        seg = SamSegmenter.from_checkpoint(ckpt, SamConfig(device=device))
    pts, labels = prompts(n_sets, n_points, h, w)

    def embed_once():
        seg.predictor.forget()  # drop the cached embedding so the encoder really runs
        seg.set_image(img)
        if seg.device.type == "cuda":
            torch.cuda.synchronize()

    embed, embed_cpu = timed(embed_once, embed_repeats)  # after a warm-up run
    n_embed_runs = seg.n_embeddings

    def predict_loop():
        for i in range(n_sets):  # (coordinates approximately converted: timing only)
            m, s, _ = seg.predictor.predict(pts[i] - 0.5, labels[i], multimask_output=True)
            _ = m[s.argmax()]

    def one_by_one():
        for i in range(n_sets):
            seg.prompt(img, pts[i : i + 1], labels[i : i + 1])

    all_in_one = SamSegmenter(seg.model, dataclasses.replace(seg.config,
                                                             prompt_batch_size=n_sets))
    all_in_one.predictor = seg.predictor  # same cached embedding

    def batched():
        all_in_one.prompt(img, pts, labels)

    def default_chunks():
        seg.prompt(img, pts, labels)

    rows = {}
    for name, fn in (("predict loop", predict_loop), ("one-by-one", one_by_one),
                     ("batched", batched), ("default chunks", default_chunks)):
        wall, cpu = timed(fn, repeats)
        rows[name] = {"prompts_s": wall, "prompts_cpu_s": cpu, "frame_s": embed + wall,
                      "frame_cpu_s": embed_cpu + cpu}
    if auto:
        ref = SamAutomaticMaskGenerator(seg.model, **seg.config.generator_kwargs())
        ref.predictor = seg.predictor  # same cached embedding: times the decoding only
        for name, fn in (("auto: SAM generator", lambda: ref.generate(img)),
                         ("auto: IoU-first", lambda: seg.auto_masks(img))):
            wall, cpu = timed(fn, 1, warmup=False)
            rows[name] = {"prompts_s": wall, "prompts_cpu_s": cpu, "frame_s": embed + wall,
                          "frame_cpu_s": embed_cpu + cpu}
    assert seg.n_embeddings == n_embed_runs  # prompting never re-embedded the frame
    ratio = {
        f"{kind}ratio_{a}_over_batched": rows[a][f"prompts_{kind}s"] / rows["batched"][
            f"prompts_{kind}s"]
        for kind in ("", "cpu_") for a in ("one-by-one", "predict loop")
    }
    return {
        "model": model_type, "device": str(seg.device), "image": [h, w],
        "n_prompt_sets": n_sets, "points_per_set": n_points, "embed_s": embed,
        "embed_cpu_s": embed_cpu, "threads": torch.get_num_threads(), "variants": rows,
        **ratio,
        "frame_ratio_predict_loop_over_batched":
            rows["predict loop"]["frame_s"] / rows["batched"]["frame_s"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["tiny", "vit_b"])
    ap.add_argument("--n-prompts", type=int, default=16, help="prompt sets (IDs) per frame")
    ap.add_argument("--points", type=int, default=3, help="points per prompt set")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each prompt variant")
    ap.add_argument("--embed-repeats", type=int, default=1, help="timed image embeddings")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--auto", action="store_true",
                    help="also time auto_masks against SamAutomaticMaskGenerator (1 run each)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (1 is steadiest on a machine shared with others)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    results = []
    print(f"{'model':6} {'variant':20} {'embed s':>8} {'prompts s':>10} {'frame s':>8} "
          f"{'embed cpu':>10} {'prompts cpu':>12}")
    for model_type in args.models:
        r = bench_model(
            model_type, args.n_prompts, args.points, args.repeats, args.embed_repeats,
            args.device, args.auto,
        )
        results.append(r)
        for name, v in r["variants"].items():
            print(f"{model_type:6} {name:20} {r['embed_s']:8.3f} {v['prompts_s']:10.4f} "
                  f"{v['frame_s']:8.3f} {r['embed_cpu_s']:10.3f} {v['prompts_cpu_s']:12.4f}")
        print(f"{model_type:6} prompts one-by-one / batched = "
              f"{r['ratio_one-by-one_over_batched']:.1f}x wall, "
              f"{r['cpu_ratio_one-by-one_over_batched']:.1f}x cpu; predict loop / batched = "
              f"{r['ratio_predict loop_over_batched']:.1f}x wall, "
              f"{r['cpu_ratio_predict loop_over_batched']:.1f}x cpu; per frame predict loop / "
              f"batched = {r['frame_ratio_predict_loop_over_batched']:.2f}x "
              f"({r['device']}, {r['threads']} threads)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
