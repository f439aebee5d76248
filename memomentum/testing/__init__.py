"""Small files in each dataset's exact on-disk format (Clothing1M, ANIMAL-10N, Food-101N, mini-WebVision,
CIFAR, image folders), written for the tests and the benchmarks; never used by a run."""
