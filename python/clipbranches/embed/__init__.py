"""Embedding: image and text towers, the 32-d heads, and ingesting a collection into a catalog.

- :mod:`~clipbranches.embed.encoders`: the towers behind one interface, and the one factory
  (:func:`~clipbranches.embed.encoders.make_encoder`) from a spec or a catalog's identity.
- :mod:`~clipbranches.embed.head`: the heads that map tower features into the shared space.
- :mod:`~clipbranches.embed.codes`: heads + quantizer, features to codes; the one writer of a
  catalog with its heads and thumbnails.
- :mod:`~clipbranches.embed.chunks`: resumable, chunked encoding of image files.
- :mod:`~clipbranches.embed.ingest`: a folder or table of images to a catalog.

Importing this package is light: torch and the towers load inside the modules that use them.
"""
