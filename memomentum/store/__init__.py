"""Images decoded once and packed into a store on disk, read back in whole batches (the streamed path
for data that does not fit in memory).

* :mod:`.packing`: :func:`~.packing.pack_images`, which packs a store or reuses one;
* :mod:`.reading`: :class:`~.reading.PackedImages`, a store read back as a uint8 (N, S, S, 3) array;
* :mod:`.layout`: where stores live, a store's name (a hash of its sources and settings) and its files;
* :mod:`.shards`: one shard's packing, and the pool of worker processes;
* :mod:`.pixels`: the pixels as the protocol decodes them, and the optional image libraries;
* :mod:`.unpacked`: image files read with a store's pixels without packing them (what prediction reads).
"""
