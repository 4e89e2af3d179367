"""mvcodec: compression of synchronized multi-camera video into real ``.mvc`` bitstreams.

Data flow (see ``../shared/DESIGN.md``)::

    INPUT -> mvcodec.io (MultiViewClip / ClipSource)
          -> codec.encode(source, settings, writer)      (mvcodec.codecs)
          -> .mvc file: magic | version | header | packets | index | trailer   (mvcodec.bitstream)
          -> codec.decode(reader, views, frames) -> frames -> writers / metrics
"""

__version__ = "0.1.0"
