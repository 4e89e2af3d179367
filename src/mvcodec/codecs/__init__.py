"""The codec registry.  Importing this package registers every built-in codec."""

from mvcodec.codecs.base import (Codec, DecodedFrame, EncodeSettings, codec_ids, get_codec,  # noqa: F401
                                 register)
from mvcodec.codecs import simulcast  # noqa: F401,E402  (registers x264, x265, svtav1, vvenc)
from mvcodec.codecs import mvhevc  # noqa: F401,E402  (registers mvhevc)
from mvcodec.codecs import inr  # noqa: F401,E402  (registers mv-mginr)
