"""The codec registry.  Importing this package registers every built-in codec."""

from mvcodec.codecs import (
                                 inr,  # noqa: F401,E402  (registers mv-mginr)
                                 learned_inter,  # noqa: F401,E402  (registers mlvc)
                                 learned_intra,  # noqa: F401,E402  (registers mvc-intra)
                                 learned_multiview,  # noqa: F401,E402  (registers lmvc)
                                 mvhevc,  # noqa: F401,E402  (registers mvhevc)
                                 simulcast,  # noqa: F401,E402  (registers x264, x265, svtav1, vvenc)
)
from mvcodec.codecs.base import Codec, DecodedFrame, EncodeSettings, codec_ids, get_codec, register  # noqa: F401
