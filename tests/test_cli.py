"""The command line end to end, and every bad input: one line on stderr, exit status 2, no partial output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mvcodec.api import header_for
from mvcodec.bitstream import MvcReader, MvcWriter
from mvcodec.cli.main import main
from mvcodec.codecs import EncodeSettings, get_codec
from mvcodec.io import read_clip
from mvcodec.metrics import evaluate_clips


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status: int, err: str, pattern: str) -> None:
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mvcodec: error: ") or lines[0].startswith("mvcodec "), err
    assert "Traceback" not in err
    assert pattern in lines[0], lines[0]


def encode(capsys, png_clip: Path, out: Path, *extra: str) -> int:
    status, _, err = run_cli(capsys, "encode", str(png_clip), "-o", str(out), "--codec", "x265", "--quality", "27",
                             "--gop", "4", *extra)
    assert status == 0, err
    return status


def test_encode_report_info_decode(capsys, tmp_path, png_clip, small_clip):
    mvc, report = tmp_path / "a.mvc", tmp_path / "r.json"
    encode(capsys, png_clip, mvc, "--report", str(report))
    r = json.loads(report.read_text())
    assert r["bytes"] == mvc.stat().st_size
    assert r["bpp"] == pytest.approx(8 * mvc.stat().st_size / (2 * 6 * 48 * 64))
    assert len(r["psnr_rgb_per_view"]) == 2 and r["psnr_rgb"] > 30 and r["encode_seconds"] > 0

    status, out, _ = run_cli(capsys, "info", str(mvc), "--json")
    info = json.loads(out)
    assert status == 0 and info["header"]["codec_id"] == "x265" and info["file_bytes"] == r["bytes"]
    with MvcReader(mvc) as reader:
        assert info["payload_bytes"] == sum(e.length for e in reader.entries)
    assert info["payload_bytes"] + info["container_bytes"] == r["bytes"] and info["format_version"] == "2.0"
    status, out, _ = run_cli(capsys, "info", str(mvc))
    assert status == 0 and "x265" in out and "cam1" in out

    status, _, err = run_cli(capsys, "decode", str(mvc), "-o", str(tmp_path / "dec"))
    assert status == 0, err
    decoded = read_clip(tmp_path / "dec")
    assert decoded.frames.shape == small_clip.frames.shape
    assert evaluate_clips(small_clip, decoded, ms_ssim=False).psnr_rgb == pytest.approx(r["psnr_rgb"], abs=1e-9)


def test_decode_one_frame_of_one_view(capsys, tmp_path, png_clip):
    mvc = tmp_path / "a.mvc"
    encode(capsys, png_clip, mvc)
    status, _, err = run_cli(capsys, "decode", str(mvc), "-o", str(tmp_path / "one"), "--views", "1",
                             "--frames", "4:5")
    assert status == 0, err
    assert sorted(p.name for p in (tmp_path / "one").glob("*.png")) == ["v1_f004.png"]
    status, _, err = run_cli(capsys, "decode", str(mvc), "-o", str(tmp_path / "y"), "--format", "y4m")
    assert status == 0, err
    assert sorted(p.name for p in (tmp_path / "y").iterdir()) == ["v0.y4m", "v1.y4m"]


def test_codecs_lists_the_registry(capsys):
    status, out, _ = run_cli(capsys, "codecs")
    assert status == 0
    for cid in ("x264", "x265", "svtav1", "vvenc", "mvhevc"):
        assert cid in out


def test_eval_writes_results_bd_table_and_plot(capsys, tmp_path, png_clip):
    out = tmp_path / "ev"
    status, stdout, err = run_cli(capsys, "eval", str(png_clip), "--codecs", "x265,x264", "--qualities",
                                  "22,27,32,37", "--gop", "4", "--out", str(out))
    assert status == 0, err
    results = json.loads((out / "results.json").read_text())
    points = results["points"]
    assert len(points) == 8
    for p in points:  # every rate is the size of a file that was decoded back
        assert (out / p["file"]).stat().st_size == p["bytes"]
        assert len(p["per_view"]["psnr_rgb"]) == 2 and 0 < p["ms_ssim"] <= 1
    table = (out / "bd_rate.md").read_text()
    assert "x264/ra" in table and "BD-rate" in table
    assert (out / "rd.png").read_bytes()[:4] == b"\x89PNG"


# ---- bad input ------------------------------------------------------------------------------------------


def test_missing_input(capsys, tmp_path):
    status, _, err = run_cli(capsys, "encode", str(tmp_path / "nope"), "-o", str(tmp_path / "a.mvc"))
    assert_one_line_error(status, err, "nope")
    assert not (tmp_path / "a.mvc").exists()


def test_frames_of_different_sizes(capsys, tmp_path, png_clip):
    Image.new("RGB", (10, 10)).save(png_clip / "v1_f003.png")
    status, _, err = run_cli(capsys, "encode", str(png_clip), "-o", str(tmp_path / "a.mvc"))
    assert_one_line_error(status, err, "10x10")
    assert not (tmp_path / "a.mvc").exists()


def test_views_with_different_frame_counts(capsys, tmp_path, png_clip):
    (png_clip / "v1_f005.png").unlink()
    (png_clip / "meta.json").unlink()
    status, _, err = run_cli(capsys, "encode", str(png_clip), "-o", str(tmp_path / "a.mvc"))
    assert_one_line_error(status, err, "frame")
    assert not (tmp_path / "a.mvc").exists()


def test_unknown_codec(capsys, tmp_path, png_clip):
    status, _, err = run_cli(capsys, "encode", str(png_clip), "-o", str(tmp_path / "a.mvc"), "--codec", "h999")
    assert_one_line_error(status, err, "unknown codec 'h999'")


@pytest.mark.parametrize("damage", ["bad_magic", "truncated", "packet_bit_flip", "wrong_version", "cut_packet"])
def test_damaged_bitstream(capsys, tmp_path, png_clip, damage):
    mvc = tmp_path / "a.mvc"
    encode(capsys, png_clip, mvc)
    data = bytearray(mvc.read_bytes())
    with MvcReader(mvc) as r:
        entry = r.entries[1]
    if damage == "bad_magic":
        data[1:4] = b"ZIP"
    elif damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "packet_bit_flip":
        data[entry.offset + entry.length // 2] ^= 0x04
    elif damage == "wrong_version":
        data[8] = 7
    elif damage == "cut_packet":
        del data[entry.offset + entry.length // 2:entry.offset + entry.length // 2 + 10]
    mvc.write_bytes(bytes(data))
    out = tmp_path / "dec"
    status, _, err = run_cli(capsys, "decode", str(mvc), "-o", str(out))
    expected = {"bad_magic": "bad magic", "truncated": "truncated", "packet_bit_flip": "CRC mismatch",
                "wrong_version": "version 7", "cut_packet": "lengths do not add up"}[damage]
    assert_one_line_error(status, err, expected)
    assert not out.exists(), "a failed decode must not leave a complete-looking output"
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())
    if damage != "packet_bit_flip":  # info reads the index, not the payloads
        status, _, err = run_cli(capsys, "info", str(mvc))
        assert_one_line_error(status, err, expected)


def write_with_header(path: Path, small_clip, **changes) -> None:
    codec = get_codec("x265")
    settings = EncodeSettings(quality=30, structure="ld", gop=6)
    header = header_for(codec, small_clip, settings)
    import dataclasses
    with MvcWriter(path, dataclasses.replace(header, **changes)) as w:
        codec.encode(small_clip, settings, w)


def test_file_from_an_unknown_codec(capsys, tmp_path, small_clip):
    mvc = tmp_path / "u.mvc"
    write_with_header(mvc, small_clip, codec_id="future-codec-9")
    status, _, err = run_cli(capsys, "decode", str(mvc), "-o", str(tmp_path / "d"))
    assert_one_line_error(status, err, "future-codec-9")


def test_file_needing_weights_we_do_not_have(capsys, tmp_path, small_clip):
    mvc = tmp_path / "w.mvc"
    write_with_header(mvc, small_clip, weights_sha256="f" * 64)
    status, _, err = run_cli(capsys, "decode", str(mvc), "-o", str(tmp_path / "d"))
    assert_one_line_error(status, err, "weights")


@pytest.mark.parametrize("argv, pattern", [
    (["decode", "{mvc}", "-o", "{tmp}/d", "--views", "5"], "view 5 does not exist"),
    (["decode", "{mvc}", "-o", "{tmp}/d", "--frames", "3:99"], "outside"),
    (["decode", "{mvc}", "-o", "{tmp}/d", "--frames", "x"], "frames must be"),
    (["encode", "{png}", "-o", "{tmp}/no/such/dir/a.mvc"], "does not exist"),
    (["encode", "{png}", "-o", "{tmp}/b.mvc", "--frames", "0:50"], "the input has 6"),
    (["eval", "{png}", "--codecs", "x265,x265", "--out", "{tmp}/e"], "repeats"),
    (["bogus"], "invalid choice"),
])
def test_bad_arguments(capsys, tmp_path, png_clip, argv, pattern):
    mvc = tmp_path / "a.mvc"
    encode(capsys, png_clip, mvc)
    argv = [a.format(mvc=mvc, tmp=tmp_path, png=png_clip) for a in argv]
    try:
        status, _, err = run_cli(capsys, *argv)
    except SystemExit as exc:  # argparse usage errors exit through the parser
        status, err = exc.code, capsys.readouterr().err
    assert_one_line_error(status, err, pattern)


def test_real_process_reports_one_line_and_status_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mvcodec", "info", str(tmp_path / "missing.mvc")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no such file" in proc.stderr


def test_greyscale_real_clip_encodes(capsys, tmp_path):
    from conftest import shared_clip

    clip = shared_clip("euroc_v101_stereo")
    mvc = tmp_path / "e.mvc"
    status, _, err = run_cli(capsys, "encode", str(clip), "-o", str(mvc), "--frames", "2", "--quality", "32")
    assert status == 0, err
    decoded = np.stack([f.rgb for f in __import__("mvcodec.api", fromlist=["x"]).decode_file(mvc)])
    assert decoded.shape == (4, 480, 752, 3)


def test_codec_options_reach_the_codec(capsys, tmp_path, png_clip):
    mvc = tmp_path / "fast.mvc"
    encode(capsys, png_clip, mvc, "-O", "preset=fast")
    status, out, _ = run_cli(capsys, "info", str(mvc), "--json")
    assert json.loads(out)["header"]["codec_config"]["preset"] == "fast"
    status, _, err = run_cli(capsys, "encode", str(png_clip), "-o", str(tmp_path / "b.mvc"), "-O", "colour=blue")
    assert_one_line_error(status, err, "colour")
    assert not (tmp_path / "b.mvc").exists()


def test_interrupted_fit_leaves_no_output_and_resumes(capsys, tmp_path, png_clip, monkeypatch):
    """Ctrl-C during an mv-mginr fit: no .mvc, a checkpoint, and --resume finishes the same encode."""
    import mvcodec.train.inr_fit as inr_fit

    mvc = tmp_path / "inr.mvc"
    argv = ["encode", str(png_clip), "-o", str(mvc), "--codec", "mv-mginr", "--quality", "1",
            "-O", "fit_epochs=3", "-O", "qat_epochs=1"]
    real_save = inr_fit._save
    calls = {"n": 0}

    def save_then_interrupt(*args, **kwargs):
        real_save(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(inr_fit, "_save", save_then_interrupt)
    status, _, err = run_cli(capsys, *argv)
    assert status == 130 and "--resume" in err
    assert not mvc.exists() and not any(p.name.endswith(".mvc") for p in tmp_path.iterdir())
    checkpoint = tmp_path / "inr.mvc.ckpt"
    assert (checkpoint / "state.json").is_file()

    monkeypatch.setattr(inr_fit, "_save", real_save)
    status, _, err = run_cli(capsys, *argv, "--resume", str(checkpoint))
    assert status == 0, err
    assert mvc.exists() and not checkpoint.exists()

    status, _, err = run_cli(capsys, *argv, "--resume", str(tmp_path / "nothing"))
    assert_one_line_error(status, err, "no checkpoint to resume from")


def test_eval_codes_a_structure_independent_codec_once(capsys, tmp_path, png_clip):
    out = tmp_path / "ev"
    status, _, err = run_cli(capsys, "eval", str(png_clip), "--codecs", "x265,mv-mginr", "--structures", "ld,ra",
                             "--qualities", "x265=30,40", "--qualities", "mv-mginr=1,2", "--gop", "4",
                             "--out", str(out),
                             "-O", "mv-mginr:fit_epochs=2", "-O", "mv-mginr:qat_epochs=1", "-O", "x265:preset=fast")
    assert status == 0, err
    points = json.loads((out / "results.json").read_text())["points"]
    inr = [p for p in points if p["codec"] == "mv-mginr"]
    assert sorted(p["series"] for p in inr) == ["mv-mginr/ld", "mv-mginr/ld", "mv-mginr/ra", "mv-mginr/ra"]
    assert len({p["file"] for p in inr}) == 2  # one fit per quality, shared by both structures
    assert len(list((out / "bitstreams").glob("mv-mginr_*.mvc"))) == 2
    table = (out / "bd_rate.md").read_text()
    assert "| mv-mginr/ra | x265/ra |" in table


def test_demo_runs_end_to_end_on_a_local_sample(capsys, tmp_path, monkeypatch):
    """`mvcodec demo` with the pose2sim download replaced by a local 2-camera manifest of real video files."""
    from conftest import synthetic_clip

    import mvcodec.data.samples as samples
    from mvcodec.io import write_views

    manifest = write_views(synthetic_clip(views=2, frames=4, height=48, width=64), tmp_path / "sample", fmt="mkv")
    monkeypatch.setattr(samples, "pose2sim_manifest", lambda cache=None: manifest)
    status, out, err = run_cli(capsys, "demo", "--frames", "4", "--out", str(tmp_path / "demo"))
    assert status == 0, err
    assert "PSNR-RGB" in out and (tmp_path / "demo" / "pose2sim_x265.mvc").exists()
    assert sorted(p.name for p in (tmp_path / "demo" / "decoded_view1_frames_0-2").glob("*.png")) == [
        "v1_f000.png", "v1_f001.png"]


@pytest.mark.parametrize("option, pattern", [("precision=fp16", "precision must be auto, fp32 or bf16"),
                                             ("colour=blue", "has no option")])
def test_bad_learned_codec_options_are_one_line(capsys, tmp_path, png_clip, option, pattern):
    out = tmp_path / "x.mvc"
    status, _, err = run_cli(capsys, "encode", str(png_clip), "-o", str(out), "--codec", "mv-mginr", "-O", option)
    assert_one_line_error(status, err, pattern)
    assert not out.exists() and not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("codec, option, pattern", [("mlvc", "ra_gop=6", "ra_gop must be one of"),
                                                    ("mlvc", "b_reference=both", "b_reference must be one of"),
                                                    ("lmvc", "ra_gop=x", "ra_gop must be one of"),
                                                    ("lmvc", "key_picture=both", "key_picture must be one of"),
                                                    ("lmvc", "dependent_picture=both",
                                                     "dependent_picture must be one of"),
                                                    ("mlvc", "key_offset=x", "key_offset must be top or a"),
                                                    ("lmvc", "key_offset=-1", "key_offset must be top or a"),
                                                    ("mlvc", "picture_copy=maybe", "picture_copy must be one of"),
                                                    ("lmvc", "reference_weight=-1", "reference_weight must be a"),
                                                    ("lmvc", "reference_weight=nan", "reference_weight must be a")])
def test_bad_coding_structure_options_are_one_line(capsys, tmp_path, png_clip, codec, option, pattern):
    out = tmp_path / "x.mvc"
    status, _, err = run_cli(capsys, "encode", str(png_clip), "-o", str(out), "--codec", codec, "-O", option)
    assert_one_line_error(status, err, pattern)
    assert not out.exists() and not list(tmp_path.glob(".*partial"))
