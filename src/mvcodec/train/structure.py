"""The coding structure a training item is coded in: the stage option ``structure`` shared by the tasks that
train inter pictures (``inter``, ``multiview``), so a P or B picture trains on the references the encoder will
give it (:mod:`mvcodec.codecs.learned_structure`).

::

    stage.options["structure"] = "ld" (default): one intra period of stage.frames frames in low delay: I, then
                                 P pictures 1 .. T-1, each from a chain of up to `references` earlier pictures
                                 (references 1 frame apart)
                               = "ra": hierarchical B over one GOP of T-1 frames (T = 3, 5, 9, 17, ..): I at 0,
                                 the P anchor T-1 from frame 0, then the B pictures by bisection, each from one of
                                 its two references (past or future, :func:`draw_candidate`) as a chain start:
                                 what mlvc and lmvc code in random access (references 1 .. T-1 frames apart)
                               = "mixed": "ld" or "ra", drawn per step

The tasks code the plan picture by picture through a :class:`~mvcodec.models.dpb.DecodedPictureBuffer` and take
each picture's references with :func:`mvcodec.codecs.learned_inter.temporal_references`, as the codecs do.
"""

from __future__ import annotations

import torch

from mvcodec.codecs.learned_structure import PlannedPicture, check_ra_gop, period_plan
from mvcodec.errors import InputError
from mvcodec.train.task import Stage

STRUCTURES = ("ld", "ra")
"""The coding structures a step can be coded in; the option also takes "mixed" (one of them per step)."""


def check_structure(task: str, stage: Stage) -> str:
    """Stage option ``structure`` of ``task``'s ``stage`` (module docstring): "ld" (default), "ra" or "mixed"; "ra"
    and "mixed" need frames = one GOP + 1 (3, 5, 9, 17, ..).  Anything else is a one-line InputError."""
    value = stage.options.get("structure", "ld")
    if value not in (*STRUCTURES, "mixed"):
        raise InputError(f"{task} task: stage {stage.name} has structure {value!r} (choose from "
                         f"{', '.join(STRUCTURES)}, mixed)")
    if value != "ld":
        check_ra_gop(stage.frames - 1, f"{task} task: stage {stage.name} (structure {value}): frames - 1")
    return value


def training_plan(task: str, stage: Stage, references: int) -> list[PlannedPicture]:
    """The pictures one training item codes, in coding order: the codecs' plan (:func:`period_plan`) of one intra
    period of ``stage.frames`` frames in the stage's structure ("mixed": drawn now, with torch's generator)."""
    structure = check_structure(task, stage)
    if structure == "mixed":
        structure = STRUCTURES[int(torch.randint(2, ()))]
    return period_plan(0, stage.frames, structure, references, ra_gop=max(2, stage.frames - 1))


def draw_candidate(p: PlannedPicture) -> int:
    """Which of a B picture's two references (0: past, 1: future) it trains on, drawn with torch's generator (the
    encoder picks the cheaper; training sees both); 0 for I and P pictures."""
    return int(torch.randint(2, ())) if p.type == "B" else 0
