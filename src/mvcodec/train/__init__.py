"""Training engines, losses and schedules.  ``inr_fit``: fitting MV-MGINR to one clip (the encoder)."""
