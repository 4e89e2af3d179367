"""The ``mlvc`` codec: round trip through a real .mvc file, exact decode across thread counts, packets read per
frame (intra period + P pictures up to t only), damaged packets, weights handling.  Random-init weights in tmp
files, tiny clips (2 views x 4 frames x 64x96 and smaller)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import damage_packet, in_table_latents, static_clip, synthetic_clip

from mvcodec.api import decode_file, encode_file
from mvcodec.bitstream import MvcReader
from mvcodec.codecs.base import DecodedFrame, EncodeSettings, Skipped
from mvcodec.codecs.learned_inter import (
    MlvcCodec,
    Rungs,
    header_frame_skip,
    header_rungs,
    read_weights_file,
    save_mlvc_weights,
)
from mvcodec.errors import BitstreamError, CodecError, InputError
from mvcodec.io.clip import MultiViewClip
from mvcodec.models.inter import KEY_COPIED, InterConfig, build_inter
from mvcodec.models.intra import IntraConfig, build_intra

TINY_INTRA = IntraConfig(N=16, M=32, Z=16, groups=(8, 8), qualities=3, blocks=0, context=16)
TINY_INTER = InterConfig(N=8, M=16, Z=8, mv_channels=8, mv_M=8, mv_Z=8, qualities=3, flow_channels=8)


def write_weights(path: Path, seed: int = 0, inter_cfg: InterConfig = TINY_INTER, intra_gain: float = 1.0) -> str:
    """Random-init weights; ``intra_gain`` scales the intra model's latents (an untrained one codes all zeros at
    every rung)."""
    torch.manual_seed(seed)
    intra, inter = build_intra(TINY_INTRA), in_table_latents(build_inter(inter_cfg))
    with torch.no_grad():
        intra.gain.mul_(intra_gain)
        intra.inv_gain.div_(intra_gain)
    intra.update()
    inter.update()
    return save_mlvc_weights(intra, inter, path)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("w") / "mlvc.safetensors"
    write_weights(path)
    return path


@pytest.fixture(scope="module")
def coded(weights_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, np.ndarray]:
    """2 views x 4 frames x 64x96, intra period 3: frames 0 (I), 1, 2 (P), 3 (I); no picture copy (an untrained
    model's P picture loses to its reference copied, and these tests are about the coded latents)."""
    torch.set_num_threads(1)
    clip = synthetic_clip(views=2, frames=4, height=64, width=96)
    path = tmp_path_factory.mktemp("c") / "clip.mvc"
    codec = MlvcCodec(weights_file=str(weights_file), picture_copy="off")
    result = encode_file(clip, codec, EncodeSettings(1, "ld", gop=3), path)
    return path, result.extra, clip.frames


def decode_all(path: Path, weights_file: Path, frames: range | None = None, skip: bool = False) -> list:
    codec = MlvcCodec(weights_file=str(weights_file))
    with MvcReader(path) as reader:
        codec.check_decodable(reader.header)
        out = list(codec.decode(reader, range(reader.header.views), frames or range(reader.header.frames), skip))
        return out, reader.packets_read


def test_round_trip_matches_the_encoders_reconstruction(coded, weights_file: Path) -> None:
    path, extra, original = coded
    out, read = decode_all(path, weights_file)
    assert [(d.view, d.frame) for d in out] == [(v, t) for v in range(2) for t in range(4)]
    assert read == 8
    pictures = np.stack([d.rgb for d in out])
    assert hashlib.sha256(pictures.tobytes()).hexdigest() == extra["reconstruction_sha256"]
    assert pictures.shape == (8, 64, 96, 3) and pictures.dtype == np.uint8


def test_real_bits_are_close_to_the_estimate(coded) -> None:
    _, extra, _ = coded
    est, real = extra["estimated_bits_inter"], extra["real_bits_inter"]
    p_frames = 2 * 2
    assert real >= 0.9 * est
    assert abs(real - est) <= 0.02 * est + p_frames * 8 * 16  # 2 % plus a few bytes per packet (ANS flush)


def test_report_says_how_much_of_the_p_latents_is_coded(coded) -> None:
    """The encoder reports the share of non-zero symbols of each P-picture latent that was coded, and how many P
    pictures skipped their frame latent (the frame latent "y" is counted over the others)."""
    extra = coded[1]
    shares, skipped = extra["nonzero_symbol_share"], extra["frame_latent_skipped"]
    assert 0 <= skipped <= 4 and set(shares) == ({"y_mv"} if skipped == 4 else {"y", "y_mv"})
    assert all(0.0 <= s <= 1.0 for s in shares.values())


def test_header_names_the_weights_not_their_configs(coded, weights_file: Path) -> None:
    """The weights' hash names them and they carry their configs: the header leaves the configs out."""
    path, _, _ = coded
    with MvcReader(path) as reader:
        cfg, sha = reader.header.codec_config, reader.header.weights_sha256
    assert cfg == {"quality": 1, "key_quality": 2, "weights": "file:mlvc.safetensors", "frame_skip": True}
    assert sha == MlvcCodec(weights_file=str(weights_file)).weights_sha256()


@pytest.mark.parametrize("frame, packets", [(0, 1), (1, 2), (2, 3), (3, 1)])
def test_frame_t_reads_its_intra_picture_and_p_pictures_up_to_t(coded, weights_file: Path, frame: int,
                                                                 packets: int) -> None:
    path, _, _ = coded
    codec = MlvcCodec(weights_file=str(weights_file))
    with MvcReader(path) as reader:
        out = list(codec.decode(reader, [1], range(frame, frame + 1)))
        assert reader.packets_read == packets
    assert [(d.view, d.frame) for d in out] == [(1, frame)]


@pytest.mark.parametrize("damaged, lost", [(1, (1, 2)), (0, (0, 1, 2))])
def test_a_damaged_packet_skips_the_rest_of_its_intra_period(coded, weights_file: Path, tmp_path: Path,
                                                             damaged: int, lost: tuple) -> None:
    path, _, _ = coded
    bad = damage_packet(path, tmp_path / "bad.mvc", view=0, frame=damaged, flip=0xFF)
    with pytest.raises(BitstreamError):
        decode_all(bad, weights_file)
    out, _ = decode_all(bad, weights_file, skip=True)
    kinds = [(type(d).__name__, d.view, d.frame if isinstance(d, DecodedFrame) else tuple(d.frames)) for d in out]
    view0 = [("DecodedFrame", 0, t) for t in range(lost[0])] + [("Skipped", 0, lost), ("DecodedFrame", 0, 3)]
    assert kinds[:len(view0)] == view0
    assert kinds[len(view0):] == [("DecodedFrame", 1, t) for t in range(4)]
    assert isinstance(out[lost[0]], Skipped) and "depend on it" in out[lost[0]].reason


def test_structure_intra_codes_every_frame_intra(weights_file: Path, tmp_path: Path) -> None:
    clip = synthetic_clip(views=1, frames=3, height=64, width=64)
    path = tmp_path / "i.mvc"
    encode_file(clip, MlvcCodec(weights_file=str(weights_file)), EncodeSettings(0, "intra"), path)
    with MvcReader(path) as reader:
        assert [e.kind for e in reader.entries] == [0, 0, 0]
    out, read = decode_all(path, weights_file, frames=range(2, 3))
    assert [(d.view, d.frame) for d in out] == [(0, 2)] and read == 1


def _digest(frames: list) -> str:
    h = hashlib.sha256()
    for d in frames:
        h.update(d.rgb.tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("enc_threads, dec_threads", [(1, 2), (2, 1)])
def test_decode_is_exact_across_thread_counts(weights_file: Path, tmp_path: Path, enc_threads: int,
                                              dec_threads: int) -> None:
    """Encode with one thread count, decode with the other (in process: torch.set_num_threads); 64x128 is large
    enough that torch splits its kernels across threads (64 x 128 x 8 channels > its grain of 32768)."""
    before = torch.get_num_threads()
    clip = synthetic_clip(views=1, frames=3, height=64, width=128, seed=3)
    path = tmp_path / "t.mvc"
    try:
        torch.set_num_threads(enc_threads)
        extra = encode_file(clip, MlvcCodec(weights_file=str(weights_file)), EncodeSettings(2, "ld", gop=4),
                            path).extra
        torch.set_num_threads(dec_threads)
        out, _ = decode_all(path, weights_file)
    finally:
        torch.set_num_threads(before)
    assert _digest(out) == extra["reconstruction_sha256"]


LAUNCHER = """
import sys, torch
torch.set_num_threads(int(sys.argv[1]))
assert torch.get_num_threads() == int(sys.argv[1])
from mvcodec.cli.main import main
import mvcodec.codecs.learned_inter  # noqa: F401  (registers mlvc until the codec package imports it)
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_decode_in_fresh_processes_is_identical_with_1_2_and_4_threads(coded, weights_file: Path,
                                                                       tmp_path: Path) -> None:
    """The CLI decoder in fresh processes (the file needs the weights: found through $MVCODEC_WEIGHTS)."""
    path, extra, _ = coded
    digests = set()
    for n in (1, 2, 4):
        env = {**os.environ, "OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n),
               "MVCODEC_WEIGHTS": str(weights_file)}
        out = tmp_path / f"out{n}"
        proc = subprocess.run([sys.executable, "-c", LAUNCHER, str(n), "decode", str(path), "-o", str(out)],
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        digests.add(hashlib.sha256(b"".join(f.read_bytes() for f in sorted(out.rglob("*.png")))).hexdigest())
    assert len(digests) == 1


def test_weights_of_another_hash_are_refused(coded, tmp_path: Path) -> None:
    path, _, _ = coded
    other = tmp_path / "other.safetensors"
    write_weights(other, seed=1)
    with MvcReader(path) as reader, pytest.raises(BitstreamError, match="needs weights"):
        MlvcCodec(weights_file=str(other)).check_decodable(reader.header)


def test_weights_file_round_trip_and_errors(weights_file: Path, tmp_path: Path) -> None:
    w = read_weights_file(weights_file)
    assert (w.intra_config, w.inter_config) == (TINY_INTRA, TINY_INTER)
    intra, inter = w.models()
    assert not intra.training and not inter.training
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(CodecError):
        read_weights_file(junk)
    assert MlvcCodec(weights_file=str(tmp_path / "missing.safetensors")).unavailable_reason()
    assert "no shipped weights" in (MlvcCodec(weights="no-such-id").unavailable_reason() or "")
    with pytest.raises(InputError):
        MlvcCodec(bogus=1)


def test_bad_quality_and_structure_options_are_input_errors(weights_file: Path, tmp_path: Path) -> None:
    clip = synthetic_clip(views=1, frames=2, height=64, width=64)
    codec = MlvcCodec(weights_file=str(weights_file))
    with pytest.raises(InputError, match="quality rung"):
        encode_file(clip, codec, EncodeSettings(7, "ld"), tmp_path / "b.mvc")
    with pytest.raises(InputError, match="ra_gop"):
        MlvcCodec(weights_file=str(weights_file), ra_gop=6)
    with pytest.raises(InputError, match="b_reference"):
        MlvcCodec(weights_file=str(weights_file), b_reference="both")


def packets(path: Path) -> dict[tuple[int, int], bytes]:
    with MvcReader(path) as reader:
        return {(e.view, e.first_frame): reader.read_packet(e) for e in reader.select()}


def test_key_pictures_are_coded_at_the_key_rung(tmp_path: Path) -> None:
    """Each intra period's I picture is coded at the key rung (option key_offset: default 3 rungs higher, clamped
    to the top: 2 for these weights), the P pictures at the quality asked; the header says key_quality where it
    differs; key_offset=0 writes the files of earlier versions (no header key); every file decodes to the
    encoder's pictures."""
    torch.set_num_threads(1)
    weights_file = tmp_path / "w.safetensors"
    write_weights(weights_file, intra_gain=30.0)
    clip = synthetic_clip(views=1, frames=4, height=32, width=64, seed=3)
    cases = {"default-q0": ({}, 0), "1-q0": ({"key_offset": "1"}, 0), "0-q0": ({"key_offset": 0}, 0),
             "0-q2": ({"key_offset": "0"}, 2), "intra-q0": ({}, 0), "top-q1": ({"key_offset": "top"}, 1)}
    coded = {}
    for name, (options, q) in cases.items():
        path = tmp_path / f"{name}.mvc"
        codec = MlvcCodec(weights_file=str(weights_file), **options)
        structure = "intra" if name.startswith("intra") else "ld"
        extra = encode_file(clip, codec, EncodeSettings(q, structure, gop=3), path).extra
        with MvcReader(path) as reader:
            coded[name] = reader.header.codec_config, packets(path)
        pictures = np.stack([d.rgb for d in decode_all(path, weights_file)[0]])
        assert hashlib.sha256(pictures.tobytes()).hexdigest() == extra["reconstruction_sha256"]
    assert [coded[n][0].get("key_quality") for n in cases] == [2, 1, None, None, None, 2]
    assert all(coded[n][0]["quality"] == cases[n][1] for n in cases)
    top, same = coded["default-q0"][1], coded["0-q2"][1]
    assert top[(0, 0)] == same[(0, 0)] == coded["top-q1"][1][(0, 0)]  # the I pictures: rung 2 in all three
    assert top[(0, 3)] == same[(0, 3)]
    assert top[(0, 0)] != coded["0-q0"][1][(0, 0)] != coded["1-q0"][1][(0, 0)]
    assert coded["intra-q0"][1][(0, 0)] == coded["0-q0"][1][(0, 0)]  # all-intra: every picture at the quality
    for bad in ("-1", "x", "65", "1.5"):
        with pytest.raises(InputError, match="key_offset"):
            MlvcCodec(weights_file=str(weights_file), key_offset=bad)


@pytest.mark.parametrize("structure", ["ld", "ra"])
def test_a_static_scenes_p_and_b_pictures_are_copied(weights_file: Path, tmp_path: Path, structure: str) -> None:
    """Picture copy (the default with the frame-latent skip): a P or B picture that its reference already shows
    costs the mode byte alone; the header says ``picture_copy``; ``picture_copy=off`` writes no copies and no key;
    both decode to the encoder's pictures.  It needs the mode byte: with ``frame_skip=off`` asking for it is an
    input error."""
    torch.set_num_threads(1)
    clip = static_clip(views=1, frames=5, height=32, width=64)
    size, copied = {}, {}
    for mode in ("rd", "off"):
        path = tmp_path / f"{mode}.mvc"
        codec = MlvcCodec(weights_file=str(weights_file), picture_copy=mode, ra_gop=4)
        extra = encode_file(clip, codec, EncodeSettings(1, structure, gop=5), path).extra
        size[mode], copied[mode] = path.stat().st_size, extra["pictures_copied"]
        with MvcReader(path) as reader:
            assert reader.header.codec_config.get("picture_copy", False) == (mode == "rd")
        pictures = np.stack([d.rgb for d in decode_all(path, weights_file)[0]])
        assert hashlib.sha256(pictures.tobytes()).hexdigest() == extra["reconstruction_sha256"]
    assert copied == {"rd": 4, "off": 0} and size["rd"] < size["off"]
    assert all(len(p) == 1 for key, p in packets(tmp_path / "rd.mvc").items() if key[1] > 0)
    with pytest.raises(InputError, match="picture_copy needs frame_skip=rd"):
        MlvcCodec(weights_file=str(weights_file), frame_skip="off", picture_copy="rd")
    with pytest.raises(InputError, match="picture_copy must be one of rd, nearest, off"):
        MlvcCodec(weights_file=str(weights_file), picture_copy="always")
    assert not MlvcCodec(weights_file=str(weights_file), frame_skip="off").picture_copy


def test_a_header_whose_key_quality_is_not_a_rung_is_a_bitstream_error() -> None:
    from types import SimpleNamespace

    def header(**cfg: object) -> SimpleNamespace:
        return SimpleNamespace(codec_id="mlvc", codec_config=cfg)

    assert header_rungs(header(quality=1), 2) == Rungs(1, 1)  # files before the key rung
    assert header_rungs(header(quality=1, key_quality=2), 2) == Rungs(1, 2)
    for bad in ({"quality": 1, "key_quality": 3}, {"quality": 1, "key_quality": "2"},
                {"quality": 1, "key_quality": True}, {"quality": -1}, {}):
        with pytest.raises(BitstreamError, match="not a rung in 0..2"):
            header_rungs(header(**bad), 2)


@pytest.fixture(scope="module")
def coded_ra(weights_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    """1 view x 18 frames x 32x64, random access, one intra period, GOP 8: I 0, P 8, 16, 17 (the period's last
    frame), B pictures between; the B pictures from the cheaper candidate ("rd") and always from the past."""
    torch.set_num_threads(1)
    clip = synthetic_clip(views=1, frames=18, height=32, width=64)
    out = {}
    for b_reference in ("rd", "past"):
        path = tmp_path_factory.mktemp("ra") / f"{b_reference}.mvc"
        codec = MlvcCodec(weights_file=str(weights_file), ra_gop=8, b_reference=b_reference)
        out[b_reference] = path, encode_file(clip, codec, EncodeSettings(1, "ra", gop=32), path).extra
    return out


@pytest.mark.parametrize("b_reference", ["rd", "past"])
def test_random_access_round_trip_is_exact(coded_ra, weights_file: Path, b_reference: str) -> None:
    path, extra = coded_ra[b_reference]
    out, read = decode_all(path, weights_file)
    assert [d.frame for d in out] == list(range(18)) and read == 18
    assert _digest(out) == extra["reconstruction_sha256"]
    with MvcReader(path) as reader:
        assert reader.header.codec_config["ra_gop"] == 8
        kinds = {e.first_frame: e.kind for e in reader.select()}
    assert [t for t, k in kinds.items() if k == 1] == [8, 16, 17] and kinds[0] == 0
    b_kinds = {k for t, k in kinds.items() if t not in (0, 8, 16, 17)}
    assert b_kinds == {4} if b_reference == "past" else b_kinds <= {4, 5}


@pytest.mark.parametrize("frame, packets", [(9, 3), (13, 4), (17, 4), (4, 2)])
def test_random_access_frame_reads_only_its_dependency_set(coded_ra, weights_file: Path, frame: int,
                                                           packets: int) -> None:
    """B pictures from the past: 9 -> 8 -> 0;  13 -> 12 -> 8 -> 0;  P 17 -> 16, 8, 0;  4 -> 0 (and 4 itself)."""
    path, _ = coded_ra["past"]
    out, read = decode_all(path, weights_file, range(frame, frame + 1))
    assert [d.frame for d in out] == [frame] and read == packets
    full, _ = decode_all(path, weights_file)
    assert np.array_equal(out[0].rgb, full[frame].rgb)


def test_random_access_frame_with_searched_references_reads_its_chain(coded_ra, weights_file: Path) -> None:
    """Whatever candidates the encoder kept, frame 13 reads its chain through the kinds in the index only."""
    path, _ = coded_ra["rd"]
    with MvcReader(path) as reader:
        kinds = {e.first_frame: e.kind for e in reader.select()}
    chain, t, refs = {13}, 13, {13: (12, 14), 12: (8, 16), 14: (12, 16)}
    while t in refs:
        t = refs[t][0 if kinds[t] == 4 else 1]
        chain.add(t)
    chain |= {8, 0} | ({16} if 16 in chain else set())
    out, read = decode_all(path, weights_file, range(13, 14))
    assert read == len(chain)


def test_a_damaged_b_picture_costs_the_pictures_that_reference_it(coded_ra, weights_file: Path,
                                                                  tmp_path: Path) -> None:
    """B 2 (from 0) is referenced by B 3 (from 2) only: frames 2:4 are skipped, everything else decodes."""
    path, _ = coded_ra["past"]
    bad = damage_packet(path, tmp_path / "bad.mvc", view=0, frame=2, flip=0xFF)
    out, _ = decode_all(bad, weights_file, skip=True)
    skipped = [d for d in out if isinstance(d, Skipped)]
    assert [(s.view, s.frames) for s in skipped] == [(0, range(2, 4))]
    full, _ = decode_all(path, weights_file)
    good = {d.frame: d.rgb for d in out if isinstance(d, DecodedFrame)}
    assert sorted(good) == [0, 1, *range(4, 18)]
    assert all(np.array_equal(good[t], full[t].rgb) for t in good)


def test_shipping_an_inter_run_joins_it_with_shipped_intra_weights(tmp_path: Path, monkeypatch) -> None:
    """zoo.ship of an ``inter`` run writes one mlvc file: the run's inter model + the shipped intra model named by
    --intra (config {"intra", "inter"}); without --intra, or with an unknown one, it refuses (exit 2)."""
    import json

    from mvcodec import zoo
    from mvcodec.codecs.learned_intra import save_intra_weights
    from mvcodec.train.config import load_config
    from mvcodec.train.engine import train
    from mvcodec.zoo.ship import main as ship_main

    zoo_dir = tmp_path / "zoo"
    zoo_dir.mkdir()
    monkeypatch.setattr(zoo, "_folder", lambda: zoo_dir)
    intra = build_intra(TINY_INTRA)
    intra.update()
    sha = save_intra_weights(intra, zoo_dir / "tiny-intra.safetensors")
    (zoo_dir / "index.json").write_text(json.dumps({"tiny-intra": {
        "file": "tiny-intra.safetensors", "sha256": sha, "task": "intra", "config": TINY_INTRA.to_json(),
        "command": "test", "trained": "untrained"}}))
    tiny = json.dumps(TINY_INTER.to_json())
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "inter.yaml",
                      [f"out={tmp_path / 'run'}", "batch_size=1", "num_workers=0", "data.crop=[64, 64]",
                       "data.length=2", f"model={tiny}", "device=cpu", "lambdas=[100, 200, 400]",
                       "stages=[{name: p, steps: 1, lr: 1.0e-4, frames: 2, options: {loss: rd}}]"])
    assert train(cfg, command="mvcodec train --config configs/inter.yaml").completed
    run = str(tmp_path / "run")
    assert ship_main([run, "tiny-mlvc", "--trained", "1 step"]) == 2            # no --intra
    assert ship_main([run, "tiny-mlvc", "--trained", "1 step", "--intra", "nope"]) == 2
    assert ship_main([run, "tiny-mlvc", "--trained", "1 step", "--intra", "tiny-intra"]) == 0
    entry = json.loads((zoo_dir / "index.json").read_text())["tiny-mlvc"]
    assert entry["task"] == "inter" and set(entry["config"]) == {"intra", "inter"}
    assert "tiny-intra" in entry["command"]
    codec = MlvcCodec(weights="tiny-mlvc")
    assert codec.unavailable_reason() is None
    assert codec.weights().inter_config == TINY_INTER and codec.weights().intra_config == TINY_INTRA
    clip = synthetic_clip(views=1, frames=2, height=64, width=64)
    result = encode_file(clip, codec, EncodeSettings(0, "ld", gop=2), tmp_path / "c.mvc")
    assert result.extra["real_bits"] > 0
    # rejoined: the shipped inter model with other shipped intra weights (--intra), e.g. a better intra codec
    torch.manual_seed(3)
    other = build_intra(TINY_INTRA)
    other.update()
    index = json.loads((zoo_dir / "index.json").read_text())
    index["other-intra"] = {"file": "other-intra.safetensors", "task": "intra", "config": TINY_INTRA.to_json(),
                            "sha256": save_intra_weights(other, zoo_dir / "other-intra.safetensors"),
                            "command": "test", "trained": "untrained"}
    (zoo_dir / "index.json").write_text(json.dumps(index))
    assert ship_main(["zoo:tiny-mlvc", "tiny-mlvc-2", "--trained", "0 steps"]) == 2           # neither flag
    assert ship_main(["zoo:tiny-intra", "tiny-mlvc-2", "--trained", "0 steps", "--intra", "other-intra"]) == 2
    assert ship_main(["zoo:tiny-mlvc", "tiny-mlvc-2", "--trained", "0 steps", "--base", "tiny-mlvc"]) == 2
    assert ship_main(["zoo:tiny-mlvc", "tiny-mlvc-2", "--trained", "0 steps", "--intra", "other-intra"]) == 0
    rejoined, first = MlvcCodec(weights="tiny-mlvc-2").weights(), codec.weights()
    assert rejoined.part("inter.").keys() == first.part("inter.").keys()
    assert all(torch.equal(v, first.part("inter.")[k]) for k, v in rejoined.part("inter.").items())
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in rejoined.part("intra.").items())
    assert not all(torch.equal(v, first.part("intra.")[k]) for k, v in rejoined.part("intra.").items())
    assert "tiny-mlvc" in json.loads((zoo_dir / "index.json").read_text())["tiny-mlvc-2"]["command"]


def test_weights_files_are_byte_identical_for_the_same_content(tmp_path: Path) -> None:
    """The safetensors writer orders its header keys differently from call to call; a weights hash names the
    file, so the project's writer makes the bytes canonical (and safetensors still reads them)."""
    from safetensors import safe_open

    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    assert write_weights(a) == write_weights(b)
    assert a.read_bytes() == b.read_bytes()
    with safe_open(str(a), "pt") as f:
        assert set(f.metadata()) == {"task", "intra_config", "inter_config"}
    assert read_weights_file(a).inter_config == TINY_INTER


def shipped_weights_round_trip(codec, views: int, path: Path) -> tuple[dict[str, float], float]:
    """Code a small moving synthetic clip (``views`` x 3 frames of 64x64, rung 2, low delay) with ``codec``
    into the file ``path``; assert that two decodes of it agree exactly.  Returns the encoder's
    ``nonzero_symbol_share`` and the PSNR-RGB decoded from the file."""
    from mvcodec.api import decode_file, measure_file
    torch.set_num_threads(1)
    clip = synthetic_clip(views=views, frames=3, height=64, width=64, seed=5)
    shares = encode_file(clip, codec, EncodeSettings(2, "ld", gop=3), path).extra["nonzero_symbol_share"]
    first, again = ([f.rgb for f in decode_file(path, codec=codec)] for _ in range(2))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    return shares, measure_file(clip, path, codec=codec).psnr_rgb


def test_shipped_mlvc_v2_codes_its_frame_latent_where_mlvc_v1_codes_nothing(tmp_path: Path) -> None:
    """mlvc-v2 (the rate-collapse fix: BENCHMARKS.md "Breaking the rate collapse") codes non-zero frame-latent
    symbols in its P pictures, decodes them exactly, and reconstructs the P pictures better than mlvc-v1, whose
    P pictures carry only their hyper-latents."""
    psnr = {}
    for weights in ("mlvc-v1", "mlvc-v2"):
        shares, psnr[weights] = shipped_weights_round_trip(MlvcCodec(weights=weights), 1, tmp_path / f"{weights}.mvc")
        assert (shares["y"] > 0.01) if weights == "mlvc-v2" else shares.get("y", 0.0) == 0.0  # or skipped
    assert psnr["mlvc-v2"] > psnr["mlvc-v1"]


def test_shipped_mlvc_v3_skips_the_frame_latent_it_does_not_use(tmp_path: Path) -> None:
    """mlvc-v3's frame latent codes nothing (BENCHMARKS.md "mlvc-v3"): with frame-latent skip (the default) its P
    pictures leave out the hyper-latent too (48 symbols at 64x64, ~20 bytes), at the same picture quality;
    ``frame_skip=off`` writes the files of earlier versions (no header key, no mode byte); both decode to the
    encoder's pictures."""
    from mvcodec.api import decode_file
    torch.set_num_threads(1)
    clip = synthetic_clip(views=1, frames=4, height=64, width=64, seed=5)
    size, psnr = {}, {}
    for mode in ("rd", "off"):
        path, codec = tmp_path / f"{mode}.mvc", MlvcCodec(frame_skip=mode)
        extra = encode_file(clip, codec, EncodeSettings(2, "ld", gop=4), path).extra
        size[mode], psnr[mode] = path.stat().st_size, extra["psnr_rgb_encoder"]
        with MvcReader(path) as reader:
            assert header_frame_skip(reader.header, "mlvc") == (mode == "rd")
        pictures = np.stack([d.rgb for d in decode_file(path, codec=codec)])
        assert hashlib.sha256(pictures.tobytes()).hexdigest() == extra["reconstruction_sha256"]
        assert extra["frame_latent_skipped"] == (3 if mode == "rd" else 0)
    assert size["rd"] < size["off"] - 3 * 10 and psnr["rd"] == pytest.approx(psnr["off"], abs=0.05)
    with pytest.raises(InputError, match="frame_skip"):
        MlvcCodec(frame_skip="always")


def test_a_header_whose_frame_skip_is_not_a_boolean_is_a_bitstream_error() -> None:
    from types import SimpleNamespace
    assert header_frame_skip(SimpleNamespace(codec_config={}), "mlvc") is False  # files before the skip mode
    with pytest.raises(BitstreamError, match="frame_skip must be true or false"):
        header_frame_skip(SimpleNamespace(codec_config={"frame_skip": 1}), "mlvc")


def test_shipped_mlvc_v3_codes_its_motion_where_mlvc_v2_codes_none(tmp_path: Path) -> None:
    """mlvc-v3 (a flow net with a cost volume and the fixed motion stage: BENCHMARKS.md "The flow net never
    learned") codes non-zero motion-latent symbols, decodes them exactly, and predicts its P pictures better than
    mlvc-v2, whose flow net stays at zero flow."""
    psnr = {}
    for weights in ("mlvc-v2", "mlvc-v3"):
        shares, psnr[weights] = shipped_weights_round_trip(MlvcCodec(weights=weights), 1, tmp_path / f"{weights}.mvc")
        assert (shares["y_mv"] > 0.01) if weights == "mlvc-v3" else shares["y_mv"] == 0.0
    assert psnr["mlvc-v3"] > psnr["mlvc-v2"]


def coming_back(frames: list[str], height: int = 32, width: int = 64, views: int = 1) -> MultiViewClip:
    """A clip whose frames are "A" (:func:`static_clip`'s picture) or "B" (its negative): a scene that moves away
    from where its intra period began and comes back."""
    a = static_clip(views=views, frames=1, height=height, width=width).frames[:, 0]
    pictures = np.stack([a if f == "A" else 255 - a for f in frames], axis=1)
    return MultiViewClip(pictures, fps=25.0, view_names=tuple(f"cam{v}" for v in range(views)))


@pytest.mark.parametrize("structure, frames, key_copied_frame", [
    ("ld", "ABAA", 2),          # P2 comes back: its reference (P1) shows B, its key picture A
    ("ra", "AAAABBBBA", 8),     # the anchor P8 comes back: its reference P4 shows B
])
def test_a_picture_that_comes_back_copies_the_key_picture(tmp_path: Path, structure: str, frames: str,
                                                          key_copied_frame: int) -> None:
    """Key copy (``picture_copy=rd``, the default): a P or B picture may be its intra period's key picture
    unchanged (mode byte 3, header ``key_copy``), long after the buffer let the key picture go; the file decodes
    to the encoder's pictures, whole or that frame alone.  ``picture_copy=nearest`` writes the files of the
    version before (no header key, no mode 3) and loses the picture that came back.  Shipped weights: an
    untrained model's pictures are all copies of its poor key picture, so nothing would tell the two apart."""
    torch.set_num_threads(1)
    clip = coming_back(list(frames))
    settings = EncodeSettings(1, structure, gop=len(frames))
    out = {}
    for mode in ("rd", "nearest"):
        path = tmp_path / f"{mode}.mvc"
        out[mode] = path, encode_file(clip, MlvcCodec(picture_copy=mode, ra_gop=4), settings, path).extra
        with MvcReader(path) as reader:
            assert reader.header.codec_config.get("key_copy", False) == (mode == "rd")
        pictures = np.stack([d.rgb for d in decode_file(path)])
        assert hashlib.sha256(pictures.tobytes()).hexdigest() == out[mode][1]["reconstruction_sha256"]
    (path, extra), (plain, plain_extra) = out["rd"], out["nearest"]
    assert extra["pictures_copied_from_key"] == 1 and plain_extra["pictures_copied_from_key"] == 0
    assert packets(path)[(0, key_copied_frame)] == bytes([KEY_COPIED])
    assert all(p[0] != KEY_COPIED for (_, t), p in packets(plain).items() if t > 0)
    assert extra["real_bits"] <= plain_extra["real_bits"]
    assert extra["psnr_rgb_encoder"] > plain_extra["psnr_rgb_encoder"] + 0.5
    (alone,) = decode_file(path, frames=range(key_copied_frame, key_copied_frame + 1))
    (first,) = decode_file(path, frames=range(0, 1))
    np.testing.assert_array_equal(alone.rgb, first.rgb)  # the key picture, decoded through the dependency set
