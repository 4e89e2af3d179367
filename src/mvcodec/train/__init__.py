"""Training: the engine every learned codec trains with (``engine``, ``config``, ``checkpoint``, ``distributed``,
``rd_loss``), the task contract (``task``) and the built-in tasks (``tasks``); ``inr_fit`` is MV-MGINR's own
per-clip fitting loop (its encoder).
"""
