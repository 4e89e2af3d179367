"""Readers and writers of mvcodec.io: round trips on tiny synthetic clips, lazy reads, every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import mvcodec.io.png_folder as png_folder
from mvcodec.errors import InputError
from mvcodec.io import (
    Camera,
    MultiViewClip,
    PngFolderWriter,
    VideoSource,
    Y4mWriter,
    load,
    open_clip,
    read_clip,
    write_mkv,
    write_png_folder,
    write_views,
    write_y4m,
)
from mvcodec.io.colour import pack_i420, rgb_to_yuv420, yuv420_to_rgb

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def synth(views: int = 2, frames: int = 5, height: int = 48, width: int = 64) -> np.ndarray:
    """(V, T, H, W, 3) uint8: a smooth gradient per view and a square moving 3 px per frame."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    out = np.empty((views, frames, height, width, 3), np.uint8)
    for v in range(views):
        for t in range(frames):
            img = np.stack([x * 200 / width + 20 * v, y * 180 / height + 30, (x + y) * 100 / (width + height) + 60],
                           axis=-1)
            s = 3 * t + 4 * v
            img[8:20, s + 4: s + 16] = (230, 40, 90)
            out[v, t] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def via_420(frames: np.ndarray) -> np.ndarray:
    """What an exact 4:2:0 store returns: the project's conversion there and back, frame by frame."""
    return np.stack([yuv420_to_rgb(*rgb_to_yuv420(f)) for f in frames])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def write_mp4(path: Path, frames: np.ndarray, gop: int = 4) -> Path:
    """H.264 (crf 12, B-frames) of (T, H, W, 3) frames, converted with the project's BT.709 4:2:0."""
    H, W = frames.shape[1:3]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30, options={"crf": "12", "g": str(gop), "bf": "2"})
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for i, f in enumerate(frames):
            i420 = np.frombuffer(pack_i420(*rgb_to_yuv420(f)), np.uint8).reshape(H * 3 // 2, W)
            vf = av.VideoFrame.from_ndarray(i420, format="yuv420p")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))
    return path


def write_yuv(path: Path, frames: np.ndarray) -> Path:
    path.write_bytes(b"".join(pack_i420(*rgb_to_yuv420(f)) for f in frames))
    return path


# -- round trips ---------------------------------------------------------------------------------------------

def test_png_folder_round_trip_is_exact(tmp_path):
    cams = (Camera(K=((50.0, 0, 32), (0, 50.0, 24), (0, 0, 1))), Camera(K=((50.0, 0, 32), (0, 50.0, 24), (0, 0, 1)),
                                                                     t=(0.1, 0, 0)))
    clip = MultiViewClip(synth(), fps=25, view_names=("left", "right"), cameras=cams)
    folder = write_png_folder(clip, tmp_path / "clip")
    assert sorted(p.name for p in folder.iterdir())[:2] == ["meta.json", "v0_f000.png"]
    source = open_clip(folder)
    assert (source.info.views, source.info.frames, source.info.fps) == (2, 5, 25.0)
    assert source.info.view_names == ("left", "right") and source.info.cameras == cams
    np.testing.assert_array_equal(load(source).frames, clip.frames)


def test_png_writer_streams_time_steps(tmp_path):
    frames = synth(views=3, frames=2)
    folder = write_png_folder(iter(frames.transpose(1, 0, 2, 3, 4)), tmp_path / "steps", fps=10)
    np.testing.assert_array_equal(read_clip(folder).frames, frames)


def test_png_folder_reads_only_the_needed_files(tmp_path, monkeypatch):
    frames = synth(views=2, frames=1200, height=4, width=6)
    folder = tmp_path / "long"
    with PngFolderWriter(folder, 2, compress_level=0) as w:
        for v in range(2):
            for f in frames[v]:
                w.write(v, f)
    assert (folder / "v1_f1199.png").exists()  # more than three digits
    source = open_clip(folder)
    opened: list[str] = []
    real_open = png_folder.Image.open

    def counting_open(path, *args, **kwargs):
        opened.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(png_folder.Image, "open", counting_open)
    got = source.read_frames(1, 998, 1001)
    assert opened == ["v1_f998.png", "v1_f999.png", "v1_f1000.png"]
    np.testing.assert_array_equal(got, frames[1, 998:1001])


def test_greyscale_png_becomes_r_equals_g_equals_b(tmp_path):
    grey = synth(views=1, frames=2)[0, ..., 1]
    for t, g in enumerate(grey):
        Image.fromarray(g, mode="L").save(tmp_path / f"v0_f{t:03d}.png")
    frames = read_clip(tmp_path).frames
    assert frames.shape == (1, 2, 48, 64, 3)
    np.testing.assert_array_equal(frames[0], np.repeat(grey[..., None], 3, axis=-1))


@pytest.mark.parametrize("size", [(48, 64), (7, 9)])
def test_mkv_ffv1_is_exact(tmp_path, size):
    frames = synth(views=1, frames=4, height=size[0], width=size[1])[0]
    assert write_mkv(tmp_path / "a.mkv", frames, fps=24) == 4
    source = open_clip(tmp_path / "a.mkv")
    assert (source.info.frames, source.info.fps) == (4, 24.0)
    np.testing.assert_array_equal(source.read_frames(0, 0, 4), frames)


@pytest.mark.parametrize("size", [(48, 64), (7, 9)])
def test_y4m_matches_the_420_conversion(tmp_path, size):
    frames = synth(views=1, frames=3, height=size[0], width=size[1])[0]
    write_y4m(tmp_path / "a.y4m", frames, fps=30000 / 1001)
    header = (tmp_path / "a.y4m").read_bytes().split(b"\n", 1)[0]
    assert header == f"YUV4MPEG2 W{size[1]} H{size[0]} F30000:1001 Ip A1:1 C420 XCOLORRANGE=LIMITED".encode()
    source = open_clip(tmp_path / "a.y4m")
    assert source.info.fps == pytest.approx(29.97, abs=1e-3)
    np.testing.assert_array_equal(source.read_frames(0, 1, 3), via_420(frames[1:3]))


def test_y4m_mono_and_other_chroma(tmp_path):
    grey = synth(views=1, frames=2)[0, ..., 0]
    (tmp_path / "m.y4m").write_bytes(b"YUV4MPEG2 W64 H48 F30:1 Cmono\n"
                                     + b"".join(b"FRAME\n" + g.tobytes() for g in grey))
    np.testing.assert_array_equal(read_clip(tmp_path / "m.y4m").frames[0], np.repeat(grey[..., None], 3, -1))
    # 4:4:4 is not parsed by hand: PyAV reads it (grey content, so the matrix does not matter)
    y = (16 + grey.astype(np.float64) * 219 / 255).round().astype(np.uint8)
    c = np.full_like(y[0], 128)
    (tmp_path / "c.y4m").write_bytes(b"YUV4MPEG2 W64 H48 F30:1 C444\n"
                                     + b"".join(b"FRAME\n" + f.tobytes() + c.tobytes() * 2 for f in y))
    source = open_clip(tmp_path / "c.y4m")
    assert isinstance(source, VideoSource) and source.info.frames == 2
    assert np.abs(source.read_frames(0, 0, 2).astype(int) - grey[..., None]).max() <= 2


@pytest.mark.parametrize("size", [(48, 64), (7, 9)])
def test_raw_yuv_matches_the_420_conversion(tmp_path, size):
    frames = synth(views=1, frames=3, height=size[0], width=size[1])[0]
    path = write_yuv(tmp_path / "a.yuv", frames)
    source = open_clip(path, width=size[1], height=size[0], fps=50)
    assert (source.info.frames, source.info.fps) == (3, 50.0)
    np.testing.assert_array_equal(source.read_frames(0, 2, 3), via_420(frames[2:3]))


@pytest.mark.parametrize("fmt", ["mkv", "y4m"])
def test_write_views_makes_a_readable_manifest(tmp_path, fmt):
    clip = MultiViewClip(synth(frames=2), fps=15, view_names=("a", "b"))
    manifest = write_views(clip, tmp_path / "out", fmt=fmt)
    back = read_clip(manifest)
    assert back.view_names == ("a", "b") and back.fps == 15
    expected = clip.frames if fmt == "mkv" else np.stack([via_420(v) for v in clip.frames])
    np.testing.assert_array_equal(back.frames, expected)


@pytest.mark.parametrize("kind", ["json", "yaml"])
def test_manifest_with_mp4_and_yuv(tmp_path, kind):
    frames = synth(frames=6)
    write_mp4(tmp_path / "left.mp4", frames[0])
    (tmp_path / "raw").mkdir()
    write_yuv(tmp_path / "raw" / "r.yuv", frames[1])
    right = {"name": "right", "path": "raw/r.yuv", "width": 64, "height": 48, "format": "yuv420p"}
    spec = {"fps": 30, "views": [{"name": "left", "path": "left.mp4"}, right]}
    path = tmp_path / f"m.{kind}"
    path.write_text(json.dumps(spec) if kind == "json" else
                    "fps: 30\nviews:\n  - {name: left, path: left.mp4}\n"
                    "  - {name: right, path: raw/r.yuv, width: 64, height: 48, format: yuv420p}\n")
    clip = read_clip(path)
    assert clip.frames.shape == (2, 6, 48, 64, 3) and clip.view_names == ("left", "right")
    assert psnr(clip.frames[0], via_420(frames[0])) > 35  # H.264's own loss; 4:2:0 alone costs ~34 dB here
    np.testing.assert_array_equal(clip.frames[1], via_420(frames[1]))


def test_video_seeks_instead_of_decoding_everything(tmp_path):
    frames = synth(views=1, frames=16)[0]
    path = write_mp4(tmp_path / "a.mp4", frames, gop=4)
    reference = open_clip(path).read_frames(0, 0, 16)
    assert psnr(reference, via_420(frames)) > 35
    source = open_clip(path)
    source.FORWARD_LIMIT = 1
    np.testing.assert_array_equal(source.read_frames(0, 13, 15), reference[13:15])
    assert source.decoded < 10
    np.testing.assert_array_equal(source.read_frames(0, 2, 4), reference[2:4])  # backwards
    np.testing.assert_array_equal(source.read_frames(0, 4, 6), reference[4:6])  # continues the stream
    source.close()
    np.testing.assert_array_equal(source.read_frames(0, 15, 16), reference[15:16])  # reopens after close


@pytest.mark.parametrize("layout, width, height", [("sbs", 65, 24), ("tb", 32, 49)])
def test_stereo_split(tmp_path, layout, width, height):
    packed = synth(views=1, frames=3, height=height, width=width)[0]
    write_mkv(tmp_path / "s.mkv", packed)
    source = open_clip(tmp_path / "s.mkv", layout=layout)
    info = source.info
    assert info.views == 2 and info.view_names == (("left", "right") if layout == "sbs" else ("top", "bottom"))
    first, second = source.read_frames(0, 1, 3), source.read_frames(1, 1, 3)
    if layout == "sbs":  # odd width: the middle column is dropped
        assert (info.width, info.height) == (32, 24)
        np.testing.assert_array_equal(first, packed[1:3, :, :32])
        np.testing.assert_array_equal(second, packed[1:3, :, 33:])
    else:
        assert (info.width, info.height) == (32, 24)
        np.testing.assert_array_equal(first, packed[1:3, :24])
        np.testing.assert_array_equal(second, packed[1:3, 25:])


def test_single_video_is_one_view_and_windows_read_right(tmp_path):
    clip = MultiViewClip(synth(views=3, frames=6))
    folder = write_png_folder(clip, tmp_path / "c")
    np.testing.assert_array_equal(read_clip(folder, views=[2, 0], frames=(1, 4)).frames, clip.frames[[2, 0], 1:4])
    np.testing.assert_array_equal(read_clip(folder, frames=range(4, 6)).frames, clip.frames[:, 4:6])
    np.testing.assert_array_equal(read_clip(folder, frames=(5, None)).frames, clip.frames[:, 5:])
    write_mkv(tmp_path / "one.mkv", clip.frames[1])
    one = read_clip(tmp_path / "one.mkv", frames=(2, 5))
    assert one.view_names == ("one",)
    np.testing.assert_array_equal(one.frames[0], clip.frames[1, 2:5])


# -- atomic writes ---------------------------------------------------------------------------------------------

def test_interrupted_writes_leave_no_complete_looking_output(tmp_path):
    frames = synth(views=1, frames=2)[0]
    with pytest.raises(RuntimeError):
        with Y4mWriter(tmp_path / "a.y4m") as w:
            w.write(frames[0])
            assert not (tmp_path / "a.y4m").exists()
            raise RuntimeError("interrupted")
    with pytest.raises(RuntimeError):
        with PngFolderWriter(tmp_path / "p", 1) as pw:
            pw.write(0, frames[0])
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    write_png_folder(frames[None], tmp_path / "p")
    with pytest.raises(InputError, match="not an empty folder"):
        write_png_folder(frames[None], tmp_path / "p")
    write_png_folder(frames[None, :1], tmp_path / "p", overwrite=True)
    assert read_clip(tmp_path / "p").num_frames == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["p"]


# -- bad inputs --------------------------------------------------------------------------------------------------

def png_folder_with(tmp_path: Path, files: dict[str, np.ndarray]) -> Path:
    folder = tmp_path / "bad"
    folder.mkdir()
    for name, img in files.items():
        Image.fromarray(img).save(folder / name)
    return folder


def rgb(h: int = 8, w: int = 8) -> np.ndarray:
    return np.zeros((h, w, 3), np.uint8)


@pytest.mark.parametrize("files, message", [
    ({"v0_f000.png": rgb(), "v0_f001.png": rgb(8, 10)}, "all frames must have one size"),
    ({"v0_f000.png": rgb(), "v0_f001.png": rgb(), "v1_f000.png": rgb()}, "same frame count"),
    ({"v0_f000.png": rgb(), "v0_f002.png": rgb()}, "frame 1 is missing"),
    ({"v0_f000.png": rgb(), "v2_f000.png": rgb()}, "views must be numbered"),
    ({"v0_f000.png": rgb(), "v0_f0.png": rgb()}, "two files for view 0 frame 0"),
    ({"notes.png": rgb()}, "no frames named"),
])
def test_bad_png_folders(tmp_path, files, message):
    with pytest.raises(InputError, match=message):
        open_clip(png_folder_with(tmp_path, files))


def test_corrupt_pngs_and_meta(tmp_path):
    folder = png_folder_with(tmp_path, {"v0_f000.png": rgb(), "v0_f001.png": rgb()})
    (folder / "meta.json").write_text('{"frames": 3}')
    with pytest.raises(InputError, match="meta.json: says frames = 3"):
        open_clip(folder)
    (folder / "meta.json").write_text("{not json")
    with pytest.raises(InputError, match="meta.json: not readable JSON"):
        open_clip(folder)
    (folder / "meta.json").unlink()
    good = (folder / "v0_f001.png").read_bytes()
    (folder / "v0_f001.png").write_bytes(good[:40])  # header intact, pixels cut off
    source = open_clip(folder)
    with pytest.raises(InputError, match="v0_f001.png: cannot decode PNG"):
        source.read_frames(0, 0, 2)
    (folder / "v0_f001.png").write_bytes(b"garbage" * 10)
    with pytest.raises(InputError, match="v0_f001.png: is not a PNG file"):
        open_clip(folder)


def test_missing_paths_and_bad_options(tmp_path):
    with pytest.raises(InputError, match="nothing.mp4: no such file"):
        open_clip(tmp_path / "nothing.mp4")
    write_mkv(tmp_path / "a.mkv", rgb()[None])
    with pytest.raises(InputError, match="stereo layout must be one of"):
        open_clip(tmp_path / "a.mkv", layout="rl")
    with pytest.raises(InputError, match="is 8x8, not the 9x8 given"):
        open_clip(tmp_path / "a.mkv", width=9)
    with pytest.raises(InputError, match="frames 3:3"):
        read_clip(tmp_path / "a.mkv", frames=(3, 3))


def test_corrupt_videos(tmp_path):
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes())
    with pytest.raises(InputError, match="junk.mp4: cannot open as a video"):
        open_clip(tmp_path / "junk.mp4")
    write_y4m(tmp_path / "a.y4m", synth(views=1, frames=2)[0])
    data = (tmp_path / "a.y4m").read_bytes()
    (tmp_path / "a.y4m").write_bytes(data[:-100])
    with pytest.raises(InputError, match="not a whole number of 64x48 frames"):
        open_clip(tmp_path / "a.y4m")
    write_mp4(tmp_path / "c.mp4", synth(views=1, frames=8)[0])
    damaged = bytearray((tmp_path / "c.mp4").read_bytes())
    damaged[len(damaged) // 3: len(damaged) // 3 + 200] = bytes(200)
    (tmp_path / "c.mp4").write_bytes(damaged)
    with pytest.raises(InputError, match="c.mp4: corrupt video at frame"):
        read_clip(tmp_path / "c.mp4")
    (tmp_path / "b.y4m").write_bytes(b"YUV4MPEG3 W8 H8\n")
    with pytest.raises(InputError, match="not a Y4M file"):
        open_clip(tmp_path / "b.y4m")


def test_raw_yuv_needs_size_and_whole_frames(tmp_path):
    path = write_yuv(tmp_path / "a.yuv", synth(views=1, frames=2)[0])
    with pytest.raises(InputError, match="needs its width and height"):
        open_clip(path)
    with pytest.raises(InputError, match="not a whole number of 60x48 yuv420p frames"):
        open_clip(path, width=60, height=48)
    with pytest.raises(InputError, match="only yuv420p"):
        from mvcodec.io import RawYuvSource
        RawYuvSource(path, 64, 48, pix_fmt="yuv422p")


@pytest.mark.parametrize("name, text, message", [
    ("m.json", "{", "not valid JSON"),
    ("m.yaml", "views: [a: b: c", "not valid YAML"),
    ("m.yaml", "- just a list", "must be a mapping"),
    ("m.json", '{"fps": 30}', "non-empty 'views' list"),
    ("m.json", '{"views": [{"name": "x"}]}', "view 0 needs a 'path'"),
    ("m.json", '{"views": [{"path": "gone.mkv"}]}', "gone.mkv: no such file"),
    ("m.json", '{"views": [{"path": "a.mkv"}, {"path": "small.mkv"}]}', "small.mkv is 8x6"),
    ("m.json", '{"views": [{"path": "a.mkv"}, {"path": "long.mkv"}]}', "different frame counts"),
    ("m.json", '{"views": [{"path": "a.mkv"}], "fps": -1}', "frame rate must be positive"),
    ("m.json", '{"views": [{"path": "a.mkv"}], "cameras": [{"K": 1}]}', "camera parameters are malformed"),
    ("m.json", '{"views": [{"path": "a.yuv", "width": "64"}]}', "'width' must be a positive integer"),
])
def test_bad_manifests(tmp_path, name, text, message):
    write_mkv(tmp_path / "a.mkv", np.stack([rgb()] * 2))
    write_mkv(tmp_path / "small.mkv", np.stack([rgb(6, 8)] * 2))
    write_mkv(tmp_path / "long.mkv", np.stack([rgb()] * 3))
    (tmp_path / "a.yuv").write_bytes(bytes(96))
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=message):
        open_clip(tmp_path / name)


def test_manifest_truncate_option(tmp_path):
    write_mkv(tmp_path / "a.mkv", np.stack([rgb()] * 2))
    write_mkv(tmp_path / "long.mkv", np.stack([rgb()] * 3))
    (tmp_path / "m.yml").write_text("truncate: true\nviews: [{path: a.mkv}, {path: long.mkv}]\n")
    assert open_clip(tmp_path / "m.yml").info.frames == 2


# -- real clips ------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not DATA.is_dir(), reason="shared sample data not present")
def test_real_clips_info():
    euroc = open_clip(DATA / "euroc_v101_stereo")
    assert (euroc.info.views, euroc.info.frames, euroc.info.width, euroc.info.height) == (2, 95, 752, 480)
    grey = euroc.read_frames(1, 94, 95)
    assert grey.shape == (1, 480, 752, 3)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    pose = open_clip(DATA / "pose2sim_balancing_4cam")
    assert (pose.info.views, pose.info.frames, pose.info.width, pose.info.height) == (4, 32, 540, 960)
    assert pose.info.fps == 60 and pose.info.view_names == ("cam01", "cam02", "cam03", "cam04")


def test_centre_crop_source():
    from conftest import synthetic_clip

    from mvcodec.io.manifest import CropSource

    clip = synthetic_clip(views=2, frames=3, height=20, width=30, seed=1)
    crop = CropSource.centre(clip, "10x8")
    assert (crop.info.width, crop.info.height, crop.info.views, crop.info.frames) == (10, 8, 2, 3)
    assert np.array_equal(crop.read_frames(1, 0, 2), clip.read_frames(1, 0, 2)[:, 6:14, 10:20])
    for bad in ("40x8", "10x0", "ten"):
        with pytest.raises(InputError):
            CropSource.centre(clip, bad)
