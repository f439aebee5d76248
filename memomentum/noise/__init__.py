"""The benchmark protocol on a dataset's clean labels: the noise generators (symmetric, pairflip,
instance-dependent, the reference's transition matrices) and the reference's seeded train/validation split.

* :mod:`.labels`: :func:`~.labels.make_noisy_labels`, :func:`~.labels.transition_matrix`, :data:`~.labels.NOISE_TYPES`;
* :mod:`.flips`: labels flipped with a transition matrix, proven equal to the reference's loop;
* :mod:`.instance`: instance-dependent noise, certified equal to the reference's float32 arithmetic;
* :mod:`.files`: label files and transition-matrix files;
* :mod:`.split`: the seeded train/validation split.
"""
