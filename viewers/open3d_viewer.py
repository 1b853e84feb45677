"""Interactive Open3D viewer of a labelled cloud (needs a display; see viewers/render.py for
pictures without one).

Keys (printed when the window opens):
  L  cycle colouring: label palette -> RGB -> label confidence
  N / P  step to the next / previous label (printed with its point count)
  H  hide / show the current label        I  show only the current label (toggle)
  A  show everything again                F  show / hide the camera frustums
  = / -  bigger / smaller points          Q or Esc  quit
The legend (IDs, point counts, colours) is printed to the terminal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lift3d.errors import BackendUnavailable
from viewers.scene import (
    ViewerState,
    ViewScene,
    format_legend,
    frustum_depth,
    frustum_lines,
    legend,
    load_view_scene,
    point_colors,
)

KEYS_HELP = __doc__.split("Keys (printed when the window opens):\n", 1)[1].rsplit("The", 1)[0]


def frustum_lineset(scene: ViewScene, rgb=(40, 40, 40)):
    """All frame cameras as one Open3D LineSet (empty when the scene has no cameras)."""
    import open3d as o3d

    pts, lines = [], []
    depth = frustum_depth(scene)
    for k, cam in enumerate(scene.cameras):
        p, ln = frustum_lines(cam, depth)
        pts.append(p)
        lines.append(ln + 5 * k)
    ls = o3d.geometry.LineSet()
    if pts:
        ls.points = o3d.utility.Vector3dVector(np.vstack(pts))
        ls.lines = o3d.utility.Vector2iVector(np.vstack(lines))
        ls.paint_uniform_color(np.asarray(rgb, np.float64) / 255.0)
    return ls


class CloudView:
    """Colours and visibility of one cloud for the window; caches the colour of each mode so
    switching is a copy, not a recomputation (a 5M-point cloud switches instantly)."""

    def __init__(self, scene: ViewScene, state: ViewerState):
        import open3d as o3d

        self.scene, self.state = scene, state
        self._colors: dict[str, np.ndarray] = {}
        self.points = np.asarray(scene.cloud.points, np.float64)
        self.pcd = o3d.geometry.PointCloud()
        self.refresh()

    def colors(self, mode: str) -> np.ndarray:
        if mode not in self._colors:
            self._colors[mode] = point_colors(self.scene.cloud, mode).astype(np.float64) / 255.0
        return self._colors[mode]

    def refresh(self) -> None:
        """Rebuild the Open3D cloud from the state (visible points, current colouring)."""
        import open3d as o3d

        keep = self.state.visible(self.scene.cloud.labels)
        everything = bool(keep.all())
        pts = self.points if everything else self.points[keep]
        cols = self.colors(self.state.mode)
        self.pcd.points = o3d.utility.Vector3dVector(pts)
        self.pcd.colors = o3d.utility.Vector3dVector(cols if everything else cols[keep])


def prepare(path: str | Path, color_by: str = "label", point_size: float = 2.0):
    """Everything the window shows, without opening it: (scene, state, view, frustums)."""
    scene = load_view_scene(path)
    state = ViewerState.for_cloud(scene.cloud, mode=color_by, point_size=point_size)
    view = CloudView(scene, state)
    return scene, state, view, frustum_lineset(scene)


def run_viewer(path: str | Path, color_by: str = "label", point_size: float = 2.0) -> None:
    """Open the interactive window on an output folder or a .ply (blocks until closed)."""
    vis, _, _, _ = open_window(path, color_by, point_size)
    vis.run()
    vis.destroy_window()


def open_window(path: str | Path, color_by: str = "label", point_size: float = 2.0,
                width: int = 1280, height: int = 900):
    """Create the window with the cloud, frustums and key callbacks, without running its loop.

    Returns (visualizer, state, view, callbacks: {key: callback(vis) -> bool}) so a script (or
    a check under Xvfb) can drive it and capture the screen.
    """
    import open3d as o3d

    scene, state, view, frustums = prepare(path, color_by, point_size)
    counts = {e.label: e.count for e in legend(scene.cloud.labels)}
    print(format_legend(legend(scene.cloud.labels)))
    print(KEYS_HELP)

    vis = o3d.visualization.VisualizerWithKeyCallback()
    if not vis.create_window(window_name=f"lift3d - {scene.source}", width=width,
                             height=height):
        raise BackendUnavailable("cannot open a window (no display?)",
                                 fix="render a picture instead: lift3d view OUT --render x.png")
    vis.add_geometry(view.pcd)
    show_frustums = len(scene.cameras) > 0
    if show_frustums:
        vis.add_geometry(frustums)
    vis.get_render_option().point_size = state.point_size

    def redraw(v) -> bool:
        view.refresh()
        v.update_geometry(view.pcd)
        return True

    def announce(cid) -> None:
        if cid is not None:
            print(f"label {cid}: {counts.get(cid, 0):,} points"
                  + (" (hidden)" if cid in state.hidden else ""))

    def on_mode(v):
        print(f"colour by {state.cycle_mode()}")
        return redraw(v)

    def on_step(delta):
        def cb(v):
            announce(state.step(delta))
            return redraw(v) if state.isolate else False
        return cb

    def on_hide(v):
        state.toggle_hidden()
        announce(state.current_id)
        return redraw(v)

    def on_isolate(v):
        state.toggle_isolate()
        return redraw(v)

    def on_all(v):
        state.show_all()
        return redraw(v)

    def on_size(factor):
        def cb(v):
            v.get_render_option().point_size = state.grow_points(factor)
            return True
        return cb

    def on_frustums(v):
        nonlocal show_frustums
        if not scene.cameras:
            return False
        show_frustums = not show_frustums
        if show_frustums:
            v.add_geometry(frustums, reset_bounding_box=False)
        else:
            v.remove_geometry(frustums, reset_bounding_box=False)
        return True

    callbacks = {"L": on_mode, "N": on_step(1), "P": on_step(-1), "H": on_hide,
                 "I": on_isolate, "A": on_all, "=": on_size(1.25), "-": on_size(0.8),
                 "F": on_frustums}
    for key, cb in callbacks.items():
        vis.register_key_callback(ord(key), cb)
    return vis, state, view, callbacks
