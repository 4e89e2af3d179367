"""``mvcodec data preview``: a contact sheet PNG of one training item, to look at the data a codec trains on.

::

    mvcodec data preview [--kind synthetic|vimeo90k|kitti|cityscapes|yuv|png] [--root R] [--views 3] [--frames 4]
                         [--size 256x384] [--seed 0] [--index 0] [--split train|val] [--textures SRC,...]
                         --out sheet.png

The item comes from :func:`mvcodec.data.datasets.build_dataset`, so the sheet shows exactly what training sees.
Rows are views, columns frames; a synthetic item adds two rows per view: the ground-truth flow t -> t+1
(OpenCV's HSV coding: hue = direction, brightness = speed, one scale for the sheet) and the disparity (inferno
colour map, 0 to the sheet's maximum).
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

GAP = 4
LABEL_SCALE = 0.4


def size_hw(text: str) -> tuple[int, int]:
    """``"256x384"`` -> (256, 384): HEIGHTxWIDTH, as the data config's ``crop: [H, W]``."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HEIGHTxWIDTH, e.g. 256x384, got {text!r}") from None
    if h < 16 or w < 16:
        raise argparse.ArgumentTypeError(f"size must be at least 16x16, got {text!r}")
    return h, w


def add_parser(sub: argparse._SubParsersAction) -> None:
    from mvcodec.cli.options import name_list
    from mvcodec.data.datasets import KINDS

    p = sub.add_parser("data", help="look at training data")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    q = data_sub.add_parser("preview", help="write a contact sheet PNG of one training item")
    q.add_argument("--kind", choices=KINDS, default="synthetic", help="data kind (default synthetic)")
    q.add_argument("--root", help="folder of a real layout (not for synthetic)")
    q.add_argument("--views", type=int, default=3, help="views per item (default 3)")
    q.add_argument("--frames", type=int, default=4, help="frames per item (default 4)")
    q.add_argument("--size", type=size_hw, default=(256, 384), metavar="HxW", help="crop HEIGHTxWIDTH (256x384)")
    q.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    q.add_argument("--index", type=int, default=0, help="item index (default 0)")
    q.add_argument("--split", choices=("train", "val"), default="train", help="split (default train)")
    q.add_argument("--textures", type=name_list, help="synthetic texture sources, comma-separated: skimage, "
                   "pose2sim (if cached), folders or glob patterns of frames (default skimage,pose2sim)")
    q.add_argument("--width", type=int, help="frame width of a yuv layout (else WxH in the file names)")
    q.add_argument("--height", type=int, help="frame height of a yuv layout")
    q.add_argument("--out", required=True, help="PNG file to write")
    p.set_defaults(run=run)


def flow_to_rgb(flow: np.ndarray, max_speed: float) -> np.ndarray:
    """(H, W, 2) flow -> uint8 RGB (H, W, 3): hue = direction, value = speed / ``max_speed``."""
    mag, ang = cv2.cartToPolar(np.ascontiguousarray(flow[..., 0]), np.ascontiguousarray(flow[..., 1]),
                               angleInDegrees=True)
    hsv = np.empty(flow.shape[:2] + (3,), np.uint8)
    hsv[..., 0] = (ang / 2).astype(np.uint8)  # OpenCV hue is 0..179
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(mag / max(max_speed, 1e-6) * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def disparity_to_rgb(disparity: np.ndarray, max_disparity: float) -> np.ndarray:
    """(H, W) disparity -> uint8 RGB (H, W, 3) on the inferno colour map, 0 .. ``max_disparity``."""
    grey = np.clip(disparity / max(max_disparity, 1e-6) * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    img = np.ascontiguousarray(img)
    cv2.putText(img, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, LABEL_SCALE, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, LABEL_SCALE, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def contact_sheet(item: dict) -> np.ndarray:
    """A dataset item -> uint8 RGB sheet: per view a row of frames (+ flow and disparity rows when present)."""
    frames = (item["frames"].permute(0, 1, 3, 4, 2).numpy() * 255 + 0.5).astype(np.uint8)  # (V, T, H, W, 3)
    V, T, H, W, _ = frames.shape
    rows: list[list[np.ndarray | None]] = []
    flow = item.get("flow")
    disp = item.get("disparity")
    for v in range(V):
        rows.append([_label(frames[v, t], f"v{v} t{t}") for t in range(T)])
        if flow is not None:
            f = flow.permute(0, 1, 3, 4, 2).numpy()
            top = float(np.linalg.norm(f, axis=-1).max()) if f.size else 1.0
            rows.append([_label(flow_to_rgb(f[v, t], top), f"flow {t}->{t + 1}") for t in range(T - 1)] + [None])
        if disp is not None:
            d = disp[:, :, 0].numpy()
            rows.append([_label(disparity_to_rgb(d[v, t], float(d.max())), f"disp v{v}") for t in range(T)])
    sheet = np.full((len(rows) * (H + GAP) + GAP, T * (W + GAP) + GAP, 3), 32, np.uint8)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            if cell is not None:
                y, x = GAP + r * (H + GAP), GAP + c * (W + GAP)
                sheet[y:y + H, x:x + W] = cell
    return sheet


def run(args: argparse.Namespace) -> int:
    from mvcodec.atomic import write_atomic
    from mvcodec.data.datasets import build_dataset
    from mvcodec.errors import InputError

    cfg: dict = {"kind": args.kind, "views": args.views, "frames": args.frames, "crop": list(args.size),
                 "seed": args.seed}
    if args.kind == "synthetic":
        if args.root is not None:
            raise InputError("--root applies to real layouts, not --kind synthetic")
        cfg["length"] = cfg["val_length"] = args.index + 1
        if args.textures:
            cfg["textures"] = args.textures
    else:
        if args.textures:
            raise InputError("--textures applies to --kind synthetic only")
        cfg["root"] = args.root
        cfg.update({k: getattr(args, k) for k in ("width", "height") if getattr(args, k) is not None})
    dataset = build_dataset(cfg, args.split)
    if not 0 <= args.index < len(dataset):
        raise InputError(f"--index {args.index} is outside the {len(dataset)} items of this data")
    sheet = contact_sheet(dataset[args.index])
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(f"{args.out}: could not encode the contact sheet as PNG")
    write_atomic(args.out, png.tobytes())
    rows, cols = sheet.shape[:2]
    print(f"wrote {args.out}: {cols}x{rows} contact sheet of {args.kind} item {args.index} ({args.split})")
    return 0
