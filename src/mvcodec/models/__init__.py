"""Networks, one file per concept.  ``inr``: MV-MGINR, the multi-grid implicit neural representation."""

from mvcodec.models.inr import InrArch, InrConfig, MvMgInr, build_inr, inr_config, render_frames

__all__ = ["InrArch", "InrConfig", "MvMgInr", "build_inr", "inr_config", "render_frames"]
