"""Settings of the 3D associator (lift3d/associate/scene3d.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scene3DConfig:
    """Merging tracked IDs over the fused cloud (lengths in voxels of the fusion grid, so
    they follow ``--voxel`` / the scene scale).

    Kinds of evidence, each a rule of its own (a pair is merged when one rule accepts
    it and no veto rejects it):

    * ``superpoints``: the fused voxels are cut into superpoints by a Felzenszwalb graph
      segmentation on normals (convex creases are cheap to cross, concave ones are not, so a
      superpoint is a convex piece of surface); two IDs that each put most of their votes in
      one superpoint are one object;
    * ``convex``: the 3D boundary between two IDs (adjacent voxels voted to each) is mostly
      convex (LCCP's criterion), with per-frame depth-continuous contact as the witness;
    * vetoes: a large planar structure (floor, wall, table top seen as a plane) never merges
      with anything that is not itself structure; two IDs that are seen together but touch in
      too few of those views (view consensus) are not merged;
    * ``attached``: support direction. A concave seam is what both an object resting on
      another (a box on a table) and two parts of one object (a table top and its leg) make,
      so convexity refuses both; gravity tells them apart. Things rest on upward-facing
      surfaces, nothing rests against an underside: a seam where one ID's surface faces down
      and the other ID meets it from below with a side (not a top) is a part hanging from
      another (leg, pole), so one object. "Up" is the floor's normal (the largest horizontal
      structure, oriented towards the cameras), else the cameras' average up;
    * ``held``: support direction again. Nothing rests on a vertical surface: a part whose
      upward face and downward face both meet another's side-facing surface at concave
      creases is held by it (a shelf's board between its sides or against its back panel, a
      seat against a chair's back running down to the floor), so one object. An object
      standing on a support shows no downward face where it meets a neighbour (two boxes
      side by side, a box on a board against the back panel);
    * ``thin``: the two faces of one board (a shelf's side, a chair's back) seen as two IDs
      from either side: opposed normals facing away from each other a few voxels apart;
    * ``shared``: two IDs that labelled one surface in turn (most of each one's votes on
      voxels the other voted on too).

    A step between parallel surfaces a few voxels apart (``step_off``) is neither a smooth
    nor a convex seam, and room-sized IDs that are not structure take part in no seam rule
    (``room_extent``).
    """

    # --- the graph over the fused voxels, and superpoints (Felzenszwalb over it) ---
    knn: int = 10
    """Neighbours per voxel in the graph."""
    knn_radius: float = 6.0
    """Longest edge, in voxels (far surfaces are sparser than a point per voxel)."""
    sp_k: float = 1.5
    """Felzenszwalb's scale k: larger gives larger superpoints (edge weights in [0, 2])."""
    sp_convex_discount: float = 0.15
    """Edge weight factor on convex edges ((n1 - n2) . (p1 - p2) > 0): crossing a convex
    crease (a box's edge) is cheap, a concave one (an object on the floor) is not."""
    sp_colour_weight: float = 0.0
    """Weight of the colour difference (RGB distance / 441) in an edge's weight; 0 = normals
    only, as ScanNet's Segmentator (colour splits two-coloured objects)."""
    sp_min_voxels: int = 30
    """Superpoints smaller than this are merged into a neighbour (segMinVerts)."""
    sp_share: float = 0.5
    """Two IDs are one object when each puts at least this share of its votes in the same
    superpoint (bidirectional: the superpoint also gives each at least ``sp_min_part``)."""
    sp_max_extent: float = 120.0
    """Superpoints larger than this (voxels, 4 sigma along the main axis; room-structure
    size) are no evidence of one object: on 7-Scenes' kitchen such superpoints, grown over
    noisy Kinect normals, chained walls, cupboards and floor into one ID (370 -> 329 IDs, at
    this limit 370 -> 348 without that chain); no change on seeds 0-2."""
    sp_min_covisible: int = 6
    """View consensus on the superpoint rule: two IDs seen together in at least this many
    frames ..."""
    sp_consensus: float = 0.25
    """... that touch in fewer than this share of them are not merged by superpoints (real
    scenes: on 7-Scenes' kitchen, superpoints of noisy Kinect normals spanned a wall of
    cupboards, or a table and the mug on it)."""
    sp_min_part: float = 0.03
    """A superpoint's share of votes an ID must hold there to count as in it."""
    sp_concave_veto: float = 0.55
    """Two IDs in one superpoint whose direct 3D seam (at least ``min_boundary`` edges) has
    a convex share below this are not merged by superpoints: two objects whose flat faces
    line up (boxes of different heights side by side against a wall: one superpoint over
    their fronts, a concave seam where one rises above the other). Tracked labels
    re-associated, room preset seeds 0-2: sequence IoU 0.529 / 0.530 / 0.464 -> 0.557 /
    0.530 / 0.464 at 0.55 or 0.6 (0.5: no change), AP50 seed 0 0.605 -> 0.638; 7-Scenes
    redkitchen (stride 4, 50 frames) 410 -> 418 IDs."""
    absorb_cover: float = 0.5
    """The ``absorbed`` rule, once after the rounds: a short-lived ID (``absorb_frames``) with
    at least this share of its votes on voxels that one ID seen in more frames won joins
    that ID (the same surface, labelled anew: the tracker lost it for a frame) ..."""
    absorb_part: float = 0.5
    """... else, when it has at least ``sp_share`` of its votes in one superpoint, it joins
    the ID holding at least this share of that superpoint's votes (above 1: the rule is
    off) ..."""
    absorb_frames: int = 2
    """... if it was seen in at most this many frames (an object seen longer keeps its ID even
    where the fused superpoints lump it with its support) ..."""
    absorb_ratio: float = 0.25
    """... and its votes in all are at most this share of the holder's in that superpoint.
    Fragments too small for the bidirectional superpoint rule (``sp_min_part``) or for
    ``min_voxels``. Measured with the rest at their defaults, tracked labels re-associated
    (tuning seeds 0-2 of the room preset; 7-Scenes redkitchen, stride 4, 50 frames): IDs in
    all 88 / 109 / 73 -> 49 / 63 / 53, sequence IoU 0.523 / 0.524 / 0.462 -> 0.529 / 0.530 /
    0.464, AP50 0.586 / 0.308 / 0.127 -> 0.605 / 0.326 / 0.125; 7-Scenes 469 -> 410 IDs.
    A cover share of 0.35 gave 385 IDs there, with a plurality, not a majority, of the votes:
    not taken. Applied inside the rounds it chained objects through a fragment on their seam
    (room seed 2: a chair joined the table, sequence IoU 0.462 -> 0.415)."""

    shared_share: float = 0.5
    """The ``shared`` rule: two IDs each with at least this share of its vote weight on voxels
    the other voted on too are one surface labelled in turn (the tracker relabelled a wall, a
    board or a chair between frames); the structure veto does not apply (a floor ID that also
    took a strip of wall is not planar, yet shares the floor's voxels). Without it such IDs
    stayed apart and the frames showed their surface speckled with both. Tracked labels
    re-associated (merges only): of the 91 links it made on the room seeds 0-2 and 10-12,
    89 joined parts of one object (the 2 others, IDs the tracker had spread over two boxes);
    sequence IoU, tuning seeds 0.634 / 0.764 / 0.631 -> 0.640 / 0.764 / 0.644, seeds 10-12
    0.656 / 0.689 / 0.664 -> 0.655 / 0.688 / 0.669 (0.3: 0.631 / 0.774 / 0.650 and 0.655 /
    0.691 / 0.668). Above 1: off."""

    rounds: int = 2
    """Rounds of judging: after each, merged groups are judged again as one ID."""

    # --- boundary convexity ---
    convex_share: float = 0.88
    """Share of convex (or flat) edges on the 3D boundary between two IDs to merge them."""
    convex_share_2d: float = 0.85
    """... and share of convex (or flat) pixel pairs along their depth-continuous 2D
    boundary, over all frames (the seam seen up close, with sharper normals than voxels')."""
    convex_share_seen: float = 0.8
    """A 3D share this low is enough when the views see the seam clearly convex: a 2D share
    of at least ``convex_share_2d_sharp`` (fused voxel normals round a thin board's edges, a
    chair back's two faces, blur a convex seam that the pixels show sharp). Above 1: off."""
    convex_share_2d_sharp: float = 0.92
    """See ``convex_share_seen``."""
    flat_dot: float = 0.97
    """Edges whose normals' dot product exceeds this are flat (smooth continuation) ..."""
    step_off: float = 0.3
    """... unless the edge leaves the surface by more than this (|n . d| / |d| at either end,
    about 17 degrees): then it is a step between parallel surfaces, neither flat nor convex
    (a box's front before the shelf's back panel, a lamp before a box: the k-NN graph joins
    surfaces a few voxels apart, and parallel normals alone called that seam smooth, so
    superpoints ran over it and convexity counted it convex). A smooth surface's edges stay
    within half the angle between their normals of it (7 degrees at ``flat_dot``). Tracked
    labels re-associated (merges only), room tuning seeds 0-2: sequence IoU 0.593 / 0.729 /
    0.561 -> 0.634 / 0.764 / 0.589 (0.5: 0.593 / 0.760 / 0.605; 0.2: 0.640 / 0.760 /
    0.589); no change on the objects preset. Whole runs with ``room_extent`` beside it,
    associated sequence IoU / AP50 / AP: tuning seeds 0-2 0.655 / 0.590 / 0.417 -> 0.718 /
    0.678 / 0.464; on the seeds not tuned on it changes next to nothing (10-12: 0.691 /
    0.676 / 0.444 both; 20-22: 0.702 / 0.663 / 0.402 -> 0.701 / 0.668 / 0.415; 30-32, made
    after: 0.694 / 0.639 / 0.358 both). 7-Scenes redkitchen (stride 4, 50 frames): 182 -> 179
    IDs, H 0.930 -> 0.933. Above 1: off."""
    sp_step_weight: float = 1.0
    """A step's weight in the superpoints' graph (a right-angled concave crease weighs 1)."""
    convex_unseen: bool = False
    """Merge by 3D convexity alone two IDs never seen in one frame (one died, the other was
    born later: no view to check the seam). Off: on seeds 0-2 it added wrong merges (mean
    sequence IoU 0.578 -> 0.573 at a share of 0.9 or 0.95)."""
    convex_share_unseen: float = 0.95
    """The 3D convex share such a seam needs when ``convex_unseen``."""
    min_boundary: int = 8
    """Fewest adjacent voxel pairs across two IDs' 3D boundary to judge its convexity."""
    min_boundary_rel: float = 0.15
    """... and at least this share of sqrt(voxels) of the smaller ID (the boundary must be a
    real seam, not a few voxels where a leak touches)."""

    # --- per-frame evidence (view consensus, 2D contact) ---
    contact_px: int = 4
    """Fewest depth-continuous boundary pixels for two IDs to touch in a frame."""
    depth_jump: float = 3.0
    """Two neighbouring pixels are depth-continuous when their 3D distance is below this many
    times the pixel's footprint (depth / focal length)."""
    min_covisible: int = 2
    """Fewest frames seeing both IDs to apply the view-consensus veto."""
    consensus: float = 0.6
    """Share of the frames that see both IDs in which they touch, below which a merge is
    vetoed (two parts of one object touch whenever both are in view)."""
    consensus_by_pixels: bool = True
    """Weigh each view in the consensus by the smaller ID's pixels there, rather than count
    views: a chair seen from behind shows its seat as a sliver beside the back in some views,
    where the seam between them cannot be seen (room seed 0: touching in the 2 of 4 views
    that show the seat, 1976 of 2325 pixels)."""
    min_pixels: int = 20
    """An ID counts as seen in a frame with at least this many pixels."""

    # --- support direction (gravity) ---
    attach: bool = True
    """Merge a part that meets another's underside from below (the ``attached`` rule)."""
    attach_down: float = 0.5
    """Share of the upper ID's seam edges (3D boundary) whose voxel there faces down
    (normal . up below -``attach_cos``) for the seam to be an underside ..."""
    attach_cos: float = 0.7
    """... facing down or up: normal within acos(0.7) ~ 45 degrees of -up or up."""
    attach_side: float = 0.6
    """... and share of the lower ID's seam edges whose voxel there faces sideways (neither
    up nor down): a leg's or pole's side; a part whose seam faces up is something's top (a
    box's lid under a shelf board), not an attachment."""
    attach_below: float = 0.5
    """The lower ID's seam voxels lie at least this many voxels below the upper ID's, on
    average along up."""
    held_min_edges: int = 4
    """The ``held`` rule: a part whose upward and downward faces both meet another's
    side-facing surface (normals within ``attach_cos`` of up, of down, and beyond it) at
    concave creases, each along at least this many 3D boundary edges (room-sized IDs take
    no part, ``room_extent``); view consensus as for
    ``attached``; 0: off. Tracked labels re-associated (merges only), room preset tuning
    seeds 0-2: sequence IoU 0.610 / 0.673 / 0.584 -> 0.595 / 0.737 / 0.599 at 4 (3: 0.602 /
    0.738 / 0.588; 8: 0.610 / 0.714 / 0.584); of the links it made there at 3, 48 join parts of
    one object (shelves' boards, sides and back panels, chairs' seats and backs, a lamp)
    and 4 join two (each with an ID that the tracker had already spread over both); no
    change on the objects preset. Whole runs, associated sequence IoU / AP50 without -> with
    it (the segmenter's depth-break cut keeping parts of any size): seeds 0-2 0.653 / 0.536
    -> 0.674 / 0.607, held-out 10-12 0.699 / 0.634 -> 0.710 / 0.674, 20-22 0.675 / 0.579 ->
    0.684 / 0.644. On 7-Scenes redkitchen (stride 4, 50 frames) it takes the IDs from 375 to
    182, 31.9 to 16.6 a frame, H 0.879 to 0.930 (a mug, a chair's slats, the cupboards'
    fronts whole; flush wall, shelf and cupboard fronts one ID, as without it)."""
    gravity_cos: float = 0.85
    """Structure whose plane normal lies within acos(gravity_cos) of the cameras' average up
    is a candidate floor; the largest one facing the cameras gives up."""

    # --- thin parts ---
    thin_share: float = 0.3
    """Share of the 3D boundary's edges that join two surfaces facing away from each other
    (normals opposed, convex: the two faces of a board, a seat, a chair's back, a shade,
    a few voxels apart) above which two IDs are one thin part seen from both sides (the
    ``thin`` rule; view consensus applies). Two separate objects cannot show this: their
    facing sides face each other (concave). Above 1: off."""
    thin_min_covisible: int = 1
    """View consensus on the thin rule from this many views seeing both: a board's two faces
    are hardly ever in one view, so views that see both IDs yet not touching mean two things
    (room seed 2: a chair joined a table through a fragment seen once beside the table)."""
    thin_dot: float = 0.5
    """Opposed: normals' dot product below -thin_dot."""

    # --- structure (floor, walls) ---
    structure_extent: float = 120.0
    """Extent (voxels; largest spread x 4 sigma) above which a planar ID is structure."""
    structure_flatness: float = 0.08
    """Planar: smallest spread / largest spread below this."""
    room_extent: float = 180.0
    """IDs larger than this (voxels, as ``structure_extent``) take part in no seam rule
    (``convex``, ``attached``, ``held``, ``thin``) unless both are structure: a room-sized
    piece not planar enough for structure (a corner of two walls, a wall and the floor) is
    no part of the furniture before it (room seed 1: a shelf joined a wall corner by the
    thin rule; room seed 2: a lamp joined a wall-and-corner piece by convexity, and a box
    through the lamp). This was the thin rule's own limit; the seams of all rules share it
    now. Tracked labels re-associated (merges only), room tuning seeds 0-2 (with
    ``step_off`` 0.3): sequence IoU 0.634 / 0.764 / 0.589 -> 0.634 / 0.764 / 0.631; no change
    on the objects preset. Calling such pieces structure instead measured the same there,
    but on 7-Scenes redkitchen the row of cupboards (over 3 m) became structure and joined
    the walls, the floor and the table."""
    piece_flatness: float = 0.15
    """A piece flatter than this (smallest / largest spread) lying in a structure's plane is
    structure too (a shadow on the floor, a strip of wall)."""
    plane_cos: float = 0.95
    """... in the plane: normals within acos(plane_cos) of each other ..."""
    plane_dist: float = 3.0
    """... and its centroid within this many voxels of the structure's plane."""
    min_voxels: int = 20
    """IDs with fewer voted voxels take part in no 3D rule (too little to judge)."""
