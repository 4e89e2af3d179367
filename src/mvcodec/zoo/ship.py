"""Ship a training run's weights in the package: copy ``RUN/final.safetensors`` into the zoo and add its entry.

::

    python -m mvcodec.zoo.ship RUN WEIGHTS_ID --trained "what it cost" [--intra INTRA_ID]   (from a checkout)
    python -m mvcodec.zoo.ship zoo:ID WEIGHTS_ID --trained ".." (--intra INTRA_ID | --base MLVC_ID)

    RUN/final.json (written by the training engine) --> index.json[WEIGHTS_ID] = {file: WEIGHTS_ID.safetensors,
        sha256 (checked against the copied bytes), task, config (the run's model config), command (the run's
        first command), trained}
    task "inter" (codec mlvc): the file holds the run's inter model and the shipped intra model INTRA_ID that
        codes its I pictures (codecs.learned_inter.save_mlvc_weights); config = {"intra": .., "inter": ..}
    task "multiview" (codec lmvc): the run's dependent-view model with its full config and the hash of the mlvc
        weights it extends (the run's model.base) in its metadata; config = {"dependent": .., "base_sha256": ..}

From ``zoo:ID`` (shipped weights) instead of a run, the trained parts of ID are joined with other shipped parts:
an mlvc ID's inter model with the intra model ``--intra`` (new I pictures under the same P/B model), an lmvc ID's
dependent-view model with the mlvc weights ``--base`` (the views it extends).  The entry's command names both.

The file must fit :data:`~mvcodec.zoo.MAX_WEIGHTS_BYTES`; an existing id is replaced only with ``--replace``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mvcodec import zoo as _zoo
from mvcodec.atomic import atomic_write_text, write_atomic
from mvcodec.errors import InputError

if TYPE_CHECKING:
    from mvcodec.models.inter import InterModel
    from mvcodec.models.multiview import DependentViewModel

WEIGHTS_ID = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")
"""What a shipped weights id may be: it names the file ``ID.safetensors`` in the zoo folder, so no path."""


def ship(source: str | Path, weights_id: str, trained: str, replace: bool = False,
         zoo_dir: str | Path | None = None, intra: str | None = None, base: str | None = None) -> dict:
    """Copy a run's final weights (``source`` a run folder) or join a shipped id's trained parts with other
    shipped parts (``source`` "zoo:ID") into ``zoo_dir`` (default: the package's zoo) and write the entry; an
    ``inter`` run is joined with the shipped intra weights ``intra`` (module docstring)."""
    if not WEIGHTS_ID.fullmatch(weights_id):
        raise InputError(f"weights id {weights_id!r}: lower-case letters, digits, '-' and '.', starting with a letter "
                         f"or digit (it names the file in the zoo)")
    zoo = Path(zoo_dir) if zoo_dir is not None else _zoo._folder()
    if str(source).startswith("zoo:"):
        task, data, config, command = _rejoined(str(source)[4:], intra, base)
    else:
        task, data, config, command = _from_run(Path(source), intra)
    digest = hashlib.sha256(data).hexdigest()
    if len(data) > _zoo.MAX_WEIGHTS_BYTES:
        raise InputError(f"{source}: {len(data)} bytes, over the zoo's {_zoo.MAX_WEIGHTS_BYTES}")
    index_path = zoo / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    if weights_id in index and not replace:
        raise InputError(f"weights id {weights_id!r} is already shipped (use --replace)")
    entry = {"file": f"{weights_id}.safetensors", "sha256": digest, "task": task,
             "config": config, "command": command, "trained": trained}
    write_atomic(zoo / entry["file"], data)
    index[weights_id] = entry
    atomic_write_text(index_path, json.dumps(index, indent=2) + "\n")
    return entry


def _from_run(run: Path, intra: str | None) -> tuple[str, bytes, dict, str]:
    """(task, file bytes, zoo config, command) of a finished training run's final weights."""
    info_path, weights_path = run / "final.json", run / "final.safetensors"
    if not info_path.is_file() or not weights_path.is_file():
        raise InputError(f"{run}: not a finished training run (no final.json / final.safetensors)")
    info = json.loads(info_path.read_text())
    data = weights_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != info.get("sha256"):
        raise InputError(f"{weights_path}: sha256 {digest[:12]} is not the one final.json records")
    config, command = info["config"]["model"], info.get("command", "")
    if info["task"] == "inter":
        if not intra:
            raise InputError(f"{run}: an inter run ships with the intra model of its I pictures (--intra ID)")
        data, config = _with_intra(data, config, intra)
        command = f"{command}  (I pictures: shipped {intra})"
    elif info["task"] == "multiview":
        data, config = _with_base(data, config)
    return info["task"], data, config, command


def _rejoined(source_id: str, intra: str | None, base: str | None) -> tuple[str, bytes, dict, str]:
    """(task, file bytes, zoo config, command): shipped ``source_id``'s trained part joined with the shipped
    ``intra`` (an mlvc id) or ``base`` (an lmvc id) weights."""
    from mvcodec.codecs import learned_inter, learned_multiview
    from mvcodec.errors import CodecError

    entry = _zoo.entries().get(source_id)
    if entry is None:
        raise InputError(f"zoo:{source_id}: no such shipped weights")
    wanted = {"inter": ("--intra", intra), "multiview": ("--base", base)}.get(entry.task)
    if wanted is None or not wanted[1] or (intra and base):
        raise InputError(f"zoo:{source_id} ({entry.task} weights): rejoining takes --intra ID for mlvc weights or "
                         f"--base ID for lmvc weights")
    flag, other = wanted
    note = f"the {'inter' if entry.task == 'inter' else 'dependent-view'} model of shipped {source_id} " \
           f"[{entry.command}], joined with shipped {other} ({flag[2:]}): python -m mvcodec.zoo.ship " \
           f"zoo:{source_id} ID {flag} {other}"
    try:
        if entry.task == "inter":
            data, config = _mlvc_with_intra(learned_inter.zoo_weights(source_id).models()[1], other)
        else:
            model = learned_multiview.zoo_weights(source_id).model()
            data, config = _lmvc_with_base(model, learned_inter.zoo_weights(other).sha256)
    except CodecError as exc:
        raise InputError(f"cannot rejoin zoo:{source_id} with {other!r}: {exc}") from None
    return entry.task, data, config, note


def _with_intra(inter_data: bytes, inter_config: dict, intra_id: str) -> tuple[bytes, dict]:
    """One ``mlvc`` weights file (bytes, zoo config) from an inter run's weights and shipped intra weights."""
    from safetensors.torch import load

    from mvcodec.models.inter import InterConfig, build_inter

    try:
        inter = build_inter(InterConfig.from_json(inter_config))
        inter.load_state_dict(load(inter_data), strict=True)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"cannot rebuild the inter run's model: {str(exc).splitlines()[0]}") from None
    return _mlvc_with_intra(inter, intra_id)


def _mlvc_with_intra(inter: InterModel, intra_id: str) -> tuple[bytes, dict]:
    """One ``mlvc`` weights file (bytes, zoo config): ``inter`` (an InterModel) and shipped intra weights."""
    from mvcodec.codecs.learned_inter import mlvc_weights_bytes
    from mvcodec.codecs.learned_intra import zoo_weights
    from mvcodec.errors import CodecError

    try:
        intra = zoo_weights(intra_id).model()
    except CodecError as exc:
        raise InputError(f"cannot join the inter model with intra weights {intra_id!r}: {str(exc).splitlines()[0]}") \
            from None
    return mlvc_weights_bytes(intra, inter), {"intra": intra.cfg.to_json(), "inter": inter.cfg.to_json()}


def _with_base(dep_data: bytes, model_config: dict) -> tuple[bytes, dict]:
    """One ``lmvc`` weights file (bytes, zoo config) from a multiview run's weights and its base (model.base)."""
    from safetensors.torch import load

    from mvcodec.models.multiview import DependentConfig, build_dependent
    from mvcodec.train.tasks.multiview import load_base

    cfg = dict(model_config)
    _, inter, base_sha = load_base(str(cfg.pop("base", "")))
    try:
        model = build_dependent(DependentConfig.from_json({**inter.cfg.to_json(), **cfg}))
        model.load_state_dict(load(dep_data), strict=True)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"cannot rebuild the multiview run's model: {str(exc).splitlines()[0]}") from None
    return _lmvc_with_base(model, base_sha)


def _lmvc_with_base(model: DependentViewModel, base_sha: str) -> tuple[bytes, dict]:
    """One ``lmvc`` weights file (bytes, zoo config): the dependent-view ``model`` over the mlvc weights
    ``base_sha``."""
    from mvcodec.codecs.learned_multiview import lmvc_weights_bytes

    return lmvc_weights_bytes(model, base_sha), {"dependent": model.cfg.to_json(), "base_sha256": base_sha}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a finished training run's folder, or zoo:ID to rejoin shipped weights")
    p.add_argument("weights_id")
    p.add_argument("--trained", required=True, help="what the training cost: steps, hours, machine")
    p.add_argument("--replace", action="store_true")
    p.add_argument("--intra", help="inter runs and zoo:ID of mlvc weights: the shipped intra weights that code the "
                                   "I pictures (mvc-intra-v1)")
    p.add_argument("--base", help="zoo:ID of lmvc weights: the shipped mlvc weights the dependent views extend")
    args = p.parse_args(argv)
    try:
        entry = ship(args.run, args.weights_id, args.trained, args.replace, intra=args.intra, base=args.base)
    except InputError as exc:
        print(f"mvcodec: {exc}", file=sys.stderr)
        return 2
    print(f"shipped {args.weights_id}: {entry['file']} sha256 {entry['sha256'][:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
