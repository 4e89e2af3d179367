"""The multi-view codec's ablations (issue 5) measured on one clip, on *trained* weights with one component
switched off at inference (not retrained: what each trained component contributes to that model).

    .venv/bin/python benchmarks/lmvc_ablations.py CLIP --weights-file W --base-weights-file B
                     [--frames 8] [--crop 320x192] [--rung 2] [--structure ld] [--threads 1] [-O KEY=VALUE ...]

For each switch of :class:`~mvcodec.models.multiview.DependentConfig` (HDC-FER, HDC-EM, the HDC attention
score, the HDC shift, inter-view motion prediction, inter-view context prediction) it writes the weights file of
the model with that switch off: the same tensors, less those of the removed modules (an ablation whose modules
change shape cannot be made this way and is reported as needing its own training).  Every point is a real file:
encoded, decoded back and measured against the source by ``mvcodec.api``.  Rates are of the dependent views
only (view 0 is the same ``mlvc`` stream in every row), from the packet sizes of the files.  Prints markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import torch
from clips import clip_window

from mvcodec.api import encode_file, measure_file
from mvcodec.bitstream import MvcReader
from mvcodec.cli.options import key_value
from mvcodec.codecs import EncodeSettings
from mvcodec.codecs.learned_multiview import LmvcCodec, read_weights_file, save_lmvc_weights
from mvcodec.models.multiview import build_dependent

ABLATIONS = {  # switch -> what turning it off removes
    "hdc_fer": "HDC-FER off",
    "hdc_em": "HDC-EM off",
    "hdc_attention": "HDC attention score off (shift only)",
    "hdc_shift": "HDC shift off (channel attention only)",
    "iv_motion": "inter-view motion prediction + motion prior off",
    "iv_context": "inter-view context prediction + contextual prior off",
}


def ablated_weights(weights_file: Path, switch: str, out: Path) -> str | None:
    """Write the weights of the model with ``switch`` off to ``out``; None when its tensors change shape."""
    w = read_weights_file(weights_file)
    model = build_dependent(dataclasses.replace(w.config, **{switch: False}))
    wanted = model.state_dict()
    state = {k: v for k, v in w.state.items() if k in wanted}
    if set(state) != set(wanted):
        return None
    try:
        model.load_state_dict(state, strict=True)  # (the entropy tables' buffers take the saved sizes)
    except RuntimeError:
        return None
    save_lmvc_weights(model, w.base_sha256, out)
    return w.base_sha256


def dependent_bits(path: Path) -> int:
    with MvcReader(path) as reader:
        return 8 * sum(e.length for e in reader.select() if e.view > 0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clip")
    p.add_argument("--weights-file", required=True)
    p.add_argument("--base-weights-file", required=True)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--crop", default="320x192")
    p.add_argument("--rung", type=int, default=2)
    p.add_argument("--structure", default="ld")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("-O", "--option", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="an lmvc option for every variant, e.g. dependent_picture=interview (measure the model, not "
                        "the encoder's choice between it and coding the view alone)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    source = clip_window(args.clip, args.frames, args.crop)
    info = source.info
    pixels = (info.views - 1) * info.frames * info.width * info.height
    settings = EncodeSettings(args.rung, args.structure, gop=32)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        variants: list[tuple[str, Path | None]] = [("full model", Path(args.weights_file))]
        for switch, label in ABLATIONS.items():
            out = Path(tmp) / f"{switch}.safetensors"
            variants.append((label, out if ablated_weights(Path(args.weights_file), switch, out) else None))
        for label, weights in variants:
            if weights is None:
                rows.append((label, None))
                continue
            codec = LmvcCodec(weights_file=str(weights), base_weights_file=args.base_weights_file, **dict(args.option))
            path = Path(tmp) / "a.mvc"
            encode_file(source, codec, settings, path)
            m = measure_file(source, path, codec=codec)
            rows.append((label, (dependent_bits(path) / pixels, m.per_view["psnr_rgb"][1:], m.psnr_rgb)))
            print(f"{label}: done", file=sys.stderr)
    print(f"{Path(args.clip).name}, centre {info.width}x{info.height}, {info.frames} frames x {info.views} views, "
          f"{args.structure}, rung {args.rung}, options {dict(args.option)}; dependent views only\n")
    print("| model | dependent-view bpp | dependent-view PSNR-RGB | bpp vs full | PSNR vs full |\n"
          "|---|---|---|---|---|")
    full = rows[0][1]
    for label, r in rows:
        if r is None:
            print(f"| {label} | needs its own training (its modules change shape) | | | |")
            continue
        psnr = sum(r[1]) / len(r[1])
        base_psnr = sum(full[1]) / len(full[1])
        print(f"| {label} | {r[0]:.4f} | {psnr:.2f} | {r[0] / full[0] - 1:+.1%} | {psnr - base_psnr:+.2f} dB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
