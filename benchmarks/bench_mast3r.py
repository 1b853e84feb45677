"""MASt3R pair forward at 512x384 with the full-size (released) architecture, random weights.

Reports seconds per pair forward and peak resident memory for the fused attention (sdpa) and
the plain reference, plus an attention-only comparison at the encoder's size.

    PYTHONPATH=. python benchmarks/bench_mast3r.py [--device cpu] [--repeats 1]
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from lift3d.geometry.mast3r.blocks import attention
from lift3d.geometry.mast3r.model import MAST3R_VITL_512_ARGS, Mast3rNet


def rss_mib() -> float:
    """Peak resident set size of this process so far (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_full_model(device: str) -> Mast3rNet:
    """The released architecture with cheap random weights (no default init pass)."""
    with torch.device("meta"):
        net = Mast3rNet(**MAST3R_VITL_512_ARGS)
    net = net.to_empty(device=device)
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim == 1 and "norm" in name and name.endswith("weight"):
                p.fill_(1.0)
            elif p.ndim <= 1:
                p.zero_()
            else:
                p.normal_(0.0, 0.02, generator=g)
    return net.eval()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_forward(net, img1, img2, repeats: int, device: str) -> float:
    with torch.inference_mode():
        net(img1, img2)  # warm-up (allocator, kernels)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            net(img1, img2)
        sync(device)
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    print(f"torch {torch.__version__}, device {dev}, threads {torch.get_num_threads()}")

    base = rss_mib()
    t0 = time.perf_counter()
    net = random_full_model(dev)
    n_params = sum(p.numel() for p in net.parameters())
    print(f"built {n_params / 1e6:.1f} M params in {time.perf_counter() - t0:.1f} s, "
          f"peak RSS {rss_mib():.0f} MiB (+{rss_mib() - base:.0f})")

    g = torch.Generator().manual_seed(1)
    img1 = (torch.rand(1, 3, 384, 512, generator=g) * 2 - 1).to(dev)
    img2 = (torch.rand(1, 3, 384, 512, generator=g) * 2 - 1).to(dev)
    results = {}
    for impl in ("sdpa", "torch"):
        net.set_attention(impl)
        before = rss_mib()
        if dev.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        sec = time_forward(net, img1, img2, args.repeats, dev)
        results[impl] = sec
        extra = ""
        if dev.startswith("cuda"):
            extra = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
        print(f"{impl:5s}: {sec:.2f} s per pair forward (512x384), peak RSS {rss_mib():.0f} MiB "
              f"(+{rss_mib() - before:.0f} over the loaded model){extra}")
    print(f"pair forward torch/sdpa time ratio: {results['torch'] / results['sdpa']:.2f}")

    # attention alone at the encoder's size: 2 images x 16 heads x 768 tokens x 64 dims
    q, k, v = (torch.randn(2, 16, 768, 64, generator=g).to(dev) for _ in range(3))
    times = {}
    for impl in ("sdpa", "torch"):
        attention(q, k, v, impl)
        sync(dev)
        t0 = time.perf_counter()
        for _ in range(20):
            attention(q, k, v, impl)
        sync(dev)
        times[impl] = (time.perf_counter() - t0) / 20
    err = (attention(q, k, v, "sdpa") - attention(q, k, v, "torch")).abs().max().item()
    print(f"encoder attention: sdpa {times['sdpa'] * 1e3:.1f} ms, torch "
          f"{times['torch'] * 1e3:.1f} ms, ratio {times['torch'] / times['sdpa']:.2f}, "
          f"max abs difference {err:.1e}")


if __name__ == "__main__":
    main()
