"""The networks' names, apart from the networks themselves: the configuration's check and the
command line's help name them without loading torch."""

MODELS = ("lenet", "resnet18", "resnet34", "resnet50", "mlp")
