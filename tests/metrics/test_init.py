"""The package exports its public names lazily."""

import subprocess
import sys


def test_lazy_exports_and_light_import():
    code = (
        "import sys, lift3d.metrics as m; assert 'cv2' not in sys.modules; "
        "from lift3d.metrics import consistency_per_mask, davis_scores, instance_metrics; "
        "from lift3d.metrics.consistency import consistency; "
        "assert callable(consistency) and callable(davis_scores)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
