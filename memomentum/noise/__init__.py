"""The benchmark protocol on a dataset's clean labels: the noise generators (symmetric, pairflip,
instance-dependent, the reference's transition matrices) and the reference's seeded train/validation split."""
