"""``mvcodec info IN.mvc [--json]``: the header, the packets, and the rate per view."""

from __future__ import annotations

import argparse
import json
from collections import defaultdict


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe a .mvc file")
    p.add_argument("input", help=".mvc file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)


def describe(path: str) -> dict:
    """Header fields, file size, bpp and per-view packet statistics of ``path`` (reads no payload)."""
    from dataclasses import asdict

    from mvcodec.bitstream import GLOBAL_VIEW, MvcReader
    from mvcodec.metrics import bpp

    with MvcReader(path) as reader:
        h = reader.header
        per_view: dict[str, dict[str, int]] = defaultdict(lambda: {"packets": 0, "bytes": 0})
        for e in reader.entries:
            key = "global" if e.view == GLOBAL_VIEW else str(e.view)
            per_view[key]["packets"] += 1
            per_view[key]["bytes"] += e.length
        payload = sum(e.length for e in reader.entries)
        return {"file": path, "format_version": "%d.%d" % reader.version, "file_bytes": reader.file_size,
                "payload_bytes": payload, "container_bytes": reader.file_size - payload,
                "bpp": bpp(reader.file_size, h.views, h.frames, h.height, h.width),
                "fps": h.fps, "header": asdict(h), "packets": len(reader.entries), "per_view": dict(per_view)}


def run(args: argparse.Namespace) -> int:
    d = describe(args.input)
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    h = d["header"]
    print(f"{d['file']}: .mvc version {d['format_version']}, {d['file_bytes']} bytes, {d['bpp']:.4f} bpp "
          f"({d['payload_bytes']} of payload, {d['container_bytes']} of header, index and checksums)")
    print(f"  codec      {h['codec_id']}  config {json.dumps(h['codec_config'], sort_keys=True)}")
    print(f"  weights    {h['weights_sha256'] or '(none)'}")
    print(f"  clip       {h['views']} views x {h['frames']} frames, {h['width']}x{h['height']}, {d['fps']:g} fps")
    print(f"  structure  {h['structure']}, intra period {h['gop']}")
    print(f"  packets    {d['packets']}")
    for key, stats in d["per_view"].items():
        name = h["view_names"][int(key)] if key != "global" else "(all views)"
        print(f"    view {key:>6} {name:<16} {stats['packets']:5d} packets {stats['bytes']:10d} bytes")
    return 0
