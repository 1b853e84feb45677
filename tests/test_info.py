"""`lift3d info`'s report: which backends can run here and why not."""

from __future__ import annotations

from lift3d.info import backend_report, default_segmenter, format_report
from lift3d.segment.sam_checkpoint import write_random_checkpoint


def test_report_rows_and_reasons(offline_cache):
    rows = {name: (ok, why) for name, ok, why in backend_report()}
    assert set(rows) >= {
        "segmenter:classical", "segmenter:sam", "geometry:rgbd", "geometry:flow",
        "geometry:mast3r", "device:cuda", "device:mps", "device:cpu",
    }
    ok, why = rows["segmenter:sam"]
    assert not ok and "sam_vit_h_4b8939.pth" in why and str(offline_cache) in why
    assert not rows["geometry:mast3r"][0]
    assert rows["device:cpu"][0]
    assert rows["geometry:flow"][0]  # opencv is a core dependency
    text = format_report(backend_report())
    assert len(text.splitlines()) == len(rows)
    assert default_segmenter() == "classical"


def test_sam_is_usable_and_default_once_a_checkpoint_is_there(offline_cache, monkeypatch):
    ckpt = write_random_checkpoint(offline_cache / "tiny.pth", "tiny")
    assert default_segmenter(str(ckpt)) == "sam"
    monkeypatch.setenv("LIFT3D_SAM_CHECKPOINT", str(ckpt))
    rows = {name: (ok, why) for name, ok, why in backend_report()}
    assert rows["segmenter:sam"] == (True, f"checkpoint {ckpt}")
    assert default_segmenter() == "sam"
