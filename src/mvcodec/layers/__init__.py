"""Reusable network blocks shared by the learned models."""

from mvcodec.layers.nerv import NervBlock

__all__ = ["NervBlock"]
