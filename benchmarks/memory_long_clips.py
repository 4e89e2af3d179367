"""Peak memory of encoding and decoding long clips: does it grow with the number of frames?

    .venv/bin/python benchmarks/memory_long_clips.py [--frames 100,1000] [--codecs x265,x264,svtav1,vvenc]
        [--width 640 --height 360 --views 2]

Each (codec, frame count) runs in a fresh process: a synthetic 2-view clip is generated on demand (never held
whole: a ClipSource that draws each frame when asked), encoded to a .mvc file, and decoded back from the file
with every frame compared to the source (``measure_file``, streaming).  The child reports its peak resident set
size (``ru_maxrss``) after encoding and after decoding.  MV-MGINR is run with ``fit_epochs=0, qat_epochs=0``
(``--codecs mv-mginr``): fitting time grows with the clip, the memory of everything around the fit does not
depend on the epochs.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


class MovingTextureSource:
    """A lazily drawn multi-view clip: a textured plane translating over time, shifted between views."""

    def __init__(self, views: int, frames: int, height: int, width: int) -> None:
        from mvcodec.io.clip import ClipInfo

        self.info = ClipInfo(views, frames, height, width, 30.0, tuple(f"cam{v}" for v in range(views)))
        import cv2

        rng = np.random.default_rng(7)
        noise = rng.normal(0, 1, (height + 64, width * 2 + 64, 3)).astype(np.float32)
        smooth = cv2.GaussianBlur(noise, (0, 0), 4.0)  # a natural-ish texture, not white noise
        self.texture = np.clip(128 + smooth * (60 / smooth.std()), 0, 255).astype(np.uint8)

    def read_frames(self, view: int, start: int, stop: int) -> np.ndarray:
        h, w = self.info.height, self.info.width
        out = np.empty((stop - start, h, w, 3), np.uint8)
        for i, t in enumerate(range(start, stop)):
            x0 = (2 * t + 8 * view) % (self.texture.shape[1] - w)
            y0 = (t // 3) % 64
            out[i] = self.texture[y0:y0 + h, x0:x0 + w]
        return out


def child(codec_id: str, views: int, frames: int, height: int, width: int) -> None:
    from mvcodec.api import encode_file, measure_file
    from mvcodec.codecs import EncodeSettings, get_codec

    options = {"fit_epochs": 0, "qat_epochs": 0} if codec_id == "mv-mginr" else {}
    codec = get_codec(codec_id, **options)
    quality = codec.default_qualities[len(codec.default_qualities) // 2]
    source = MovingTextureSource(views, frames, height, width)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.mvc"
        start = time.perf_counter()
        enc = encode_file(source, codec, EncodeSettings(quality=quality, structure="ra", gop=32), path)
        encode_s = time.perf_counter() - start
        rss_encode = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        m = measure_file(source, path)
        rss_decode = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"codec": codec_id, "frames": frames, "bytes": enc.bytes, "psnr_rgb": m.psnr_rgb,
                      "encode_s": encode_s, "decode_s": m.decode_seconds,
                      "peak_rss_mb_after_encode": rss_encode / 1024, "peak_rss_mb_after_decode": rss_decode / 1024}))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", default="100,1000")
    p.add_argument("--codecs", default="x265,x264,svtav1,vvenc")
    p.add_argument("--views", type=int, default=2)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.views, int(args.frames), args.height, args.width)
        return 0
    print("| codec | frames | bytes | PSNR-RGB | encode s | decode s | peak RSS after encode | after decode |")
    print("|---|---|---|---|---|---|---|---|")
    for codec in args.codecs.split(","):
        for n in args.frames.split(","):
            proc = subprocess.run([sys.executable, __file__, "--child", codec, "--frames", n, "--views",
                                   str(args.views), "--width", str(args.width), "--height", str(args.height)],
                                  capture_output=True, text=True)
            if proc.returncode:
                print(f"| {codec} | {n} | failed: {proc.stderr.strip().splitlines()[-1:]} |")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"| {codec} | {n} | {r['bytes']} | {r['psnr_rgb']:.2f} | {r['encode_s']:.0f} | {r['decode_s']:.0f} | "
                  f"{r['peak_rss_mb_after_encode']:.0f} MB | {r['peak_rss_mb_after_decode']:.0f} MB |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
