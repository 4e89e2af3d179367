"""Real multi-view sample clips that come from packages on PyPI, fetched with pip and cached.

``pose2sim``'s wheel (BSD-3-Clause) carries a real, approximately synchronized 4-camera recording
(``Pose2Sim/Demo_SinglePerson/videos/cam0{1..4}.mp4``, 1080x1920 portrait at 60 fps, 100 frames).  We download
the wheel with pip (never at import time), extract the four videos, and write a manifest that crops every view to
a common 1080x1920 (two of the cameras are 1088 high) and names the views.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from mvcodec.atomic import atomic_path, atomic_write_text
from mvcodec.errors import InputError

POSE2SIM_WHEEL = "pose2sim==0.10.49"
POSE2SIM_VIDEOS = [f"Pose2Sim/Demo_SinglePerson/videos/cam0{i}.mp4" for i in range(1, 5)]


def cache_dir() -> Path:
    """``$MVCODEC_CACHE``, else ``$XDG_CACHE_HOME/mvcodec``, else ``~/.cache/mvcodec``."""
    if os.environ.get("MVCODEC_CACHE"):
        return Path(os.environ["MVCODEC_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mvcodec"


def pose2sim_manifest(cache: Path | None = None) -> Path:
    """Path of a manifest for the pose2sim 4-camera sample, downloading the wheel with pip on first use."""
    root = (cache or cache_dir()) / "pose2sim"
    manifest = root / "manifest.json"
    if manifest.exists():
        return manifest
    root.mkdir(parents=True, exist_ok=True)
    wheels = sorted(root.glob("pose2sim-*.whl"))
    if not wheels:
        print(f"fetching the 4-camera sample ({POSE2SIM_WHEEL}, ~50 MB) with pip into {root} ...", flush=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary",
                               ":all:", "-d", str(root), POSE2SIM_WHEEL], capture_output=True, text=True)
        wheels = sorted(root.glob("pose2sim-*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise InputError(f"could not download {POSE2SIM_WHEEL} with pip: {last}")
    views = []
    with zipfile.ZipFile(wheels[-1]) as wheel:
        for member in POSE2SIM_VIDEOS:
            target = root / Path(member).name
            if not target.exists():
                with atomic_path(target) as tmp, wheel.open(member) as src, open(tmp, "wb") as dst:
                    dst.write(src.read())
            views.append({"name": target.stem, "path": target.name})
    _add_common_crop(root, views)
    atomic_write_text(manifest, json.dumps({
        "fps": 60, "views": views,
        "source": f"{POSE2SIM_WHEEL} (BSD-3-Clause), Demo_SinglePerson, 4 real cameras"}, indent=2))
    return manifest


def _add_common_crop(root: Path, views: list[dict]) -> None:
    """Give every view a centred ``crop`` to the smallest width and height among them."""
    import av

    sizes = []
    for v in views:
        with av.open(str(root / v["path"])) as c:
            s = c.streams.video[0]
            sizes.append((s.codec_context.width, s.codec_context.height))
    w, h = min(s[0] for s in sizes), min(s[1] for s in sizes)
    for v, (vw, vh) in zip(views, sizes):
        if (vw, vh) != (w, h):
            v["crop"] = [(vw - w) // 2, (vh - h) // 2, w, h]
