"""Probe of issue 15's cases 1-10 against one lift3d checkout, as a user meets them.

    python benchmarks/probe_reliability.py CODE_ROOT SCRATCH > table.tsv

CODE_ROOT: a checkout whose ``lift3d`` (and ``viewers``) to run (e.g. a ``git archive`` of an
older commit); SCRATCH: an empty folder it may fill (scenes, runs). Prints one tab-separated
line per case: what the user sees (exit code, the last stderr line, the figure). Cases 7d/7e
mount a tmpfs and run only as root. About 5 minutes on 2 busy cores.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT, WORK = Path(sys.argv[1]), Path(sys.argv[2])
shutil.rmtree(WORK, ignore_errors=True)
WORK.mkdir(parents=True)
PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "default"}
SMALL = ["--frames", "8", "--width", "160", "--height", "120"]


def lift(*args, cwd=None, timeout=600):
    r = subprocess.run([PY, "-m", "lift3d", *map(str, args)], env=ENV, capture_output=True,
                       text=True, cwd=cwd, timeout=timeout)
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    tb = "Traceback" in r.stderr
    return r.returncode, r.stdout, err, tb


def py(code):
    r = subprocess.run([PY, "-c", code], env=ENV, capture_output=True, text=True)
    return (r.stdout.strip() or r.stderr.strip().splitlines()[-1])


def short(err, tb, n=110):
    if tb:
        return "traceback: " + (err[-1][:n] if err else "")
    lines = [e for e in err if "Warning" not in e and not e.startswith("  ")]
    return (lines[-1] if lines else (err[-1] if err else ""))[:n]


def seg(scene, out, *extra):
    return lift("segment", scene, "-o", out, "--segmenter", "classical", "-q", *extra)


def report(out):
    try:
        return json.loads((Path(out) / "report.json").read_text())
    except OSError:
        return None


rows = []
s0 = WORK / "s0"
lift("make-scene", s0, "--seed", "0", *SMALL)

# 1. ScanNet preprocessed layout
pp = WORK / "pp"
shutil.copytree(s0, pp)
K = np.loadtxt(pp / "intrinsic" / "intrinsic_depth.txt")
Kc = K.copy()
Kc[0] *= 1296 / 160
Kc[1] *= 968 / 120
np.savetxt(pp / "intrinsic" / "intrinsic_color.txt", Kc)
fx = py(f"import warnings;warnings.simplefilter('ignore');from lift3d.io import load_scene;"
        f"print(load_scene('{pp}').frames[0].K[0,0])")
rc, out, err, tb = seg(pp, WORK / "o_pp")
warn = [e for e in err if "intrinsic" in e]
rows.append((f"1 ScanNet preprocessed layout (true fx {K[0, 0]:.1f})",
             f"fx used {float(fx):.1f}, exit {rc}"
             + (f", warns: {warn[0][:80]}" if warn else ", no warning")))

# 2. scene regenerated in place
s2 = WORK / "s2"
lift("make-scene", s2, "--seed", "0", *SMALL)
seg(s2, WORK / "o2")
lift("make-scene", s2, "--seed", "1", *SMALL)
seg(s2, WORK / "o2")
seg(s2, WORK / "o2_fresh")
a, b = report(WORK / "o2"), report(WORK / "o2_fresh")
qa, qb = (r["quality"]["sequence"]["sequence_iou"] for r in (a, b))
rows.append(("2 regenerated in place, rerun", f"sequence IoU {qa:.3f} (fresh run {qb:.3f})"))

# 3. changed run killed before its first frame (SIGKILL as soon as the new run.json is written)
o3 = WORK / "o3"
seg(s0, o3)
old_fp = (o3 / "cache" / "run.json").read_text()
p = subprocess.Popen([PY, "-m", "lift3d", "segment", s0, "-o", o3, "--segmenter", "classical",
                      "-q", "--eps", "0.05", "--stride", "1", "--baseline", "independent"],
                     env=ENV, stderr=subprocess.DEVNULL, start_new_session=True)
t0 = time.time()
while time.time() - t0 < 120 and p.poll() is None:
    try:
        if (o3 / "cache" / "run.json").read_text() != old_fp:
            break
    except OSError:
        pass
    time.sleep(0.002)
os.killpg(p.pid, signal.SIGKILL)
p.wait()
seg(s0, o3, "--eps", "0.05", "--baseline", "independent")
seg(s0, WORK / "o3_fresh", "--eps", "0.05", "--baseline", "independent")
same = all(np.array_equal(cv2.imread(str(f), -1), cv2.imread(str(WORK / "o3_fresh" / "labels" / f.name), -1))
           for f in (o3 / "labels").glob("*.png"))
rows.append(("3 changed run killed before frame 1, rerun", f"labels equal a fresh run: {same}"))

# 4. two runs into one folder
big = WORK / "big"
lift("make-scene", big, "--seed", "2", "--frames", "30", "--width", "160", "--height", "120")
o4 = WORK / "o4"
p = subprocess.Popen([PY, "-m", "lift3d", "segment", big, "-o", o4, "--segmenter", "classical", "-q"],
                     env=ENV, stderr=subprocess.PIPE, text=True, start_new_session=True)
while p.poll() is None and len(list((o4 / "labels").glob("*.png"))) < 2:
    time.sleep(0.05)
rc, out, err, tb = seg(s0, o4)
p.wait()
rows.append(("4 second run into a busy folder",
             f"exit {rc}: {short(err, tb)} (first run exit {p.returncode})"))

# 5. depth out of range
s5 = WORK / "s5"
shutil.copytree(s0, s5)
for f in (s5 / "depth").glob("*.png"):
    cv2.imwrite(str(f), np.full((120, 160), 65535, np.uint16))
rc, out, err, tb = seg(s5, WORK / "o5")
rows.append(("5a all-65535 depth scene", f"exit {rc}: {short(err, tb) or out.splitlines()[0][:90]}"))
s5b = WORK / "s5b"
shutil.copytree(s0, s5b)
for f in (s5b / "depth").glob("*.png"):
    d = cv2.imread(str(f), -1)
    cv2.imwrite(str(f), np.clip(d // 20, 0, 255).astype(np.uint8))
rc, out, err, tb = seg(s5b, WORK / "o5b")
rows.append(("5b 8-bit depth PNGs", f"exit {rc}: {short(err, tb) or out.splitlines()[0][:90]}"))
s5c = WORK / "s5c"
shutil.copytree(s0, s5c)
cv2.imwrite(str(s5c / "depth" / "3.png"), np.full((120, 160), 65535, np.uint16))
rc, out, err, tb = seg(s5c, WORK / "o5c")
w = [e for e in err if "no valid depth" in e]
rows.append(("5c one all-65535 frame", f"exit {rc}, " + (f"warns: {w[0][-90:]}" if w else "no warning")))

# 6. 16-bit grey colour
g = WORK / "g16.png"
cv2.imwrite(str(g), (np.tile(np.arange(64), (48, 1)) * 1000).astype(np.uint16))
v = py(f"from lift3d.io.common import read_rgb;a=read_rgb('{g}');print(a.min(),a.max(),round(a.mean(),1))")
rows.append(("6 16-bit grey colour PNG (ramp 0..63000)", f"read as min/max/mean {v}"))

# 7. write-side errors
(WORK / "afile").write_text("x")
rc, out, err, tb = seg(s0, WORK / "afile" / "out")
rows.append(("7a segment -o under a file", f"exit {rc}: {short(err, tb)}"))
rc, out, err, tb = lift("export", WORK / "o3_fresh", "--to", "colmap", "-o", WORK / "afile" / "x")
rows.append(("7b export -o under a file", f"exit {rc}: {short(err, tb)}"))
rc, out, err, tb = lift("view", WORK / "o3_fresh", "--render", WORK / "afile" / "v.png", "--backend", "numpy")
rows.append(("7c view --render under a file", f"exit {rc}: {short(err, tb)}"))
mnt = WORK / "mnt"
mnt.mkdir()
if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)]).returncode == 0:
    try:
        rc, out, err, tb = seg(s0, mnt / "out")
        first = f"exit {rc}: {short(err, tb)}"
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        rc2, out2, err2, tb2 = seg(s0, mnt / "out")
        rows.append(("7d disk full (256 KB tmpfs), then space freed", first + f"; rerun exit {rc2}"))
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        rc, out, err, tb = seg(s0, mnt / "out2")
        rows.append(("7e read-only file system", f"exit {rc}: {short(err, tb)}"))
    finally:
        subprocess.run(["umount", "-l", str(mnt)])

# 8. file mode
old = os.umask(0o022)
seg(s0, WORK / "o8")
os.umask(old)
mode = oct((WORK / "o8" / "report.json").stat().st_mode & 0o777)
rows.append(("8 report.json mode under umask 022", mode))

# 9. validation before the expensive work
t0 = time.time()
rc, out, err, tb = seg(s0, WORK / "o9", "--eps", "-1")
rows.append(("9a --eps -1", f"exit {rc} after {time.time() - t0:.1f} s: {short(err, tb)}"))
rc, out, err, tb = lift("segment", s0, "-o", WORK / "o9b", "-q", "--device", "tpu",
                        "--segmenter", "classical")
rows.append(("9b --device tpu", f"exit {rc}: {short(err, tb)}"))

# 10. habits
(WORK / "empty.pth").write_bytes(b"")
rc, out, err, tb = lift("segment", s0, "-o", WORK / "o10", "-q", "--segmenter", "sam",
                        "--sam-checkpoint", WORK / "empty.pth")
rows.append(("10a empty SAM checkpoint", f"exit {rc}: {short(err, tb)}"))
s10 = WORK / "s10"
shutil.copytree(s0, s10)
(s10 / "instance" / "5.png").unlink()
rc, out, err, tb = seg(s10, WORK / "o10b")
rows.append(("10b missing GT frame 5", f"exit {rc}: {short(err, tb) or out.splitlines()[0][-60:]}"))
o10c = WORK / "o10c"
p = subprocess.Popen([PY, "-m", "lift3d", "segment", big, "-o", o10c, "--segmenter", "classical", "-q"],
                     env=ENV, stderr=subprocess.PIPE, text=True, start_new_session=True)
while p.poll() is None and len(list((o10c / "labels").glob("*.png"))) < 2:
    time.sleep(0.05)
p.send_signal(signal.SIGINT)
_, e = p.communicate()
el = [ln for ln in e.splitlines() if ln.strip()]
rows.append(("10c SIGINT", f"exit {p.returncode}: {el[-1][:90] if el else ''}"))
cwd = WORK / "cwd"
cwd.mkdir()
lift("segment", s0, "--segmenter", "classical", "-q", cwd=cwd)
lift("segment", s10, "--segmenter", "classical", "-q", cwd=cwd)
rows.append(("10d two scenes without -o", "folders: " + ", ".join(
    sorted(str(p.relative_to(cwd)) for p in cwd.rglob("report.json")))))
big6 = WORK / "s6k"
lift("make-scene", big6, "--seed", "0", "--frames", "2", "--width", "480", "--height", "320")
rc, out, err, tb = seg(big6, WORK / "o6k", "--max-side", "160")
lab = cv2.imread(str(WORK / "o6k" / "labels" / "0.png"), -1)
rows.append(("10e --max-side 160 on 480x320", f"exit {rc}: {short(err, tb)}; labels "
             + ("none" if lab is None else f"{lab.shape[1]}x{lab.shape[0]}")))

for case, what in rows:
    print(f"{case}\t{what}")
