"""Networks, one file per concept: ``inr`` (MV-MGINR), ``intra`` (the learned intra codec), ``inter`` with
``inter_motion`` / ``inter_context`` (the single-view M-LVC inter codec) and ``dpb`` (the decoded picture buffer).
"""

from mvcodec.models.inr import InrArch, InrConfig, MvMgInr, build_inr, inr_config, render_frames
from mvcodec.models.inter import InterConfig, InterModel, build_inter
from mvcodec.models.intra import IntraConfig, IntraModel, build_intra

__all__ = ["InrArch", "InrConfig", "InterConfig", "InterModel", "IntraConfig", "IntraModel", "MvMgInr", "build_inr",
           "build_inter", "build_intra", "inr_config", "render_frames"]
