"""The tensor path: networks, the training engine, where the data comes from batch by
batch, ImageNet weights, processes and threads. Knows nothing of Me-Momentum's rules.

* :mod:`.engine`: training steps, prediction passes, the optimizer; the device is chosen here;
* :mod:`.sources`: resident tensors or streamed batches, augmented on the device;
* :mod:`.models`: the networks; :mod:`.pretrained`: torchvision's weights files;
* :mod:`.distributed`: torchrun / DDP; :mod:`.threads`: CPU threads and how they wait;
  :mod:`.malloc`: glibc's allocator tuned for large batches.

Importing this package loads nothing (``memomentum.training.threads`` must be imported
before torch).
"""
