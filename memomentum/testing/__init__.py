"""Small files in each dataset's exact on-disk format, written for the tests and the benchmarks; never used by a run.

* :mod:`.clothing1m`: a miniature Clothing1M; :mod:`.clothing1m_scale`: its annotation files at full size,
  the images hard links to a few hundred real JPEGs;
* :mod:`.real_noise`: miniatures of ANIMAL-10N, Food-101N (with Food-101's test split) and WebVision;
* :mod:`.folders`: a folder of images with one sub-folder per class;
* :mod:`.images`: what they share: an image of a class, symmetric label noise, text files written whole.
"""
