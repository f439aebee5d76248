"""Pretrained weights: torchvision's state-dict layout, and loading one from a local file."""

import hashlib
import os

import numpy as np
import pytest
import torch

from memomentum.base.errors import InputError
from memomentum.training import pretrained
from memomentum.training.models import create_model
from memomentum.training.pretrained import (
    KNOWN_FILES,
    checkpoint_dir,
    find_pretrained,
    load_pretrained,
    missing_weights_message,
)

IMAGENET = (3, 224, 224)

# torchvision 0.x's own figures for its models with 1000 classes (the "num_params" of its
# weight documentation), and the length of their state dicts (num_batches_tracked included).
TORCHVISION_PARAMS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032}
TORCHVISION_ENTRIES = {"resnet18": 122, "resnet34": 218, "resnet50": 320}

# Some of torchvision's keys, written out, as a check on the rule below.
TORCHVISION_SAMPLES = {
    "resnet50": {
        "conv1.weight": (64, 3, 7, 7),
        "bn1.num_batches_tracked": (),
        "layer1.0.conv3.weight": (256, 64, 1, 1),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer1.0.downsample.1.running_var": (256,),
        "layer2.0.conv1.weight": (128, 256, 1, 1),
        "layer2.3.bn2.weight": (128,),
        "layer3.5.conv2.weight": (256, 256, 3, 3),
        "layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
        "layer4.2.bn3.running_mean": (2048,),
        "fc.weight": (1000, 2048),
        "fc.bias": (1000,),
    },
    "resnet18": {
        "conv1.weight": (64, 3, 7, 7),
        "layer1.1.conv2.weight": (64, 64, 3, 3),
        "layer2.0.conv1.weight": (128, 64, 3, 3),
        "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer4.1.bn2.num_batches_tracked": (),
        "fc.weight": (1000, 512),
    },
}


def torchvision_layout(name: str, num_classes: int = 1000) -> list[tuple[str, tuple[int, ...]]]:
    """torchvision's state dict for ``torchvision.models.<name>()``, key and shape, in order.

    The rule of torchvision/models/resnet.py: a stem ``conv1`` (64, 3, 7, 7) and ``bn1``;
    stages ``layer1``..``layer4`` of 64, 128, 256, 512 planes with (2, 2, 2, 2) BasicBlocks
    (resnet18) or (3, 4, 6, 3) BasicBlocks (resnet34) or Bottlenecks (resnet50); a BasicBlock
    holds conv1 (3x3), bn1, conv2 (3x3), bn2; a Bottleneck conv1 (1x1), bn1, conv2 (3x3),
    bn2, conv3 (1x1, 4x planes), bn3; a stage's first block gets ``downsample`` (1x1 conv,
    BatchNorm) when it strides or changes the width; then ``fc``. Each BatchNorm holds
    weight, bias, running_mean, running_var and num_batches_tracked (a scalar).
    """

    def bn(prefix, c):
        return [(f"{prefix}.{k}", (c,)) for k in ("weight", "bias", "running_mean", "running_var")] + [
            (f"{prefix}.num_batches_tracked", ())
        ]

    bottleneck = name == "resnet50"
    expansion = 4 if bottleneck else 1
    blocks = (2, 2, 2, 2) if name == "resnet18" else (3, 4, 6, 3)
    layout = [("conv1.weight", (64, 3, 7, 7))] + bn("bn1", 64)
    in_planes = 64
    for stage, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
        for i in range(n):
            p = f"layer{stage}.{i}"
            if bottleneck:
                layout += [(f"{p}.conv1.weight", (planes, in_planes, 1, 1))] + bn(f"{p}.bn1", planes)
                layout += [(f"{p}.conv2.weight", (planes, planes, 3, 3))] + bn(f"{p}.bn2", planes)
                layout += [(f"{p}.conv3.weight", (planes * 4, planes, 1, 1))] + bn(f"{p}.bn3", planes * 4)
            else:
                layout += [(f"{p}.conv1.weight", (planes, in_planes, 3, 3))] + bn(f"{p}.bn1", planes)
                layout += [(f"{p}.conv2.weight", (planes, planes, 3, 3))] + bn(f"{p}.bn2", planes)
            if i == 0 and (stage > 1 or in_planes != planes * expansion):
                layout += [(f"{p}.downsample.0.weight", (planes * expansion, in_planes, 1, 1))]
                layout += bn(f"{p}.downsample.1", planes * expansion)
            in_planes = planes * expansion
    return layout + [("fc.weight", (num_classes, 512 * expansion)), ("fc.bias", (num_classes,))]


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_state_dict_is_torchvisions(name):
    layout = torchvision_layout(name)
    assert len(layout) == TORCHVISION_ENTRIES[name]
    assert (
        sum(torch.Size(s).numel() for k, s in layout if "running" not in k and "num_batches" not in k)
        == TORCHVISION_PARAMS[name]
    )
    assert set(TORCHVISION_SAMPLES.get(name, {}).items()) <= set(layout)
    m = create_model(name, input_shape=IMAGENET, num_classes=1000)
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == layout
    assert sum(p.numel() for p in m.parameters()) == TORCHVISION_PARAMS[name]
    assert all(v.dtype == torch.int64 for k, v in m.state_dict().items() if k.endswith("num_batches_tracked"))


# ------------------------------------------------------------------------------ loading


def _random_state(name: str) -> dict[str, torch.Tensor]:
    """A state dict with torchvision's names and shapes (1000 classes) and random values,
    so that every tensor differs from a fresh model's."""
    g = torch.Generator().manual_seed(1)
    state = {}
    for k, v in create_model(name, input_shape=IMAGENET, num_classes=1000).state_dict().items():
        if v.is_floating_point():
            state[k] = (
                torch.rand(v.shape, generator=g) + 0.5 if "running_var" in k else torch.randn(v.shape, generator=g)
            )
        else:
            state[k] = torch.randint(1, 10_000, v.shape, generator=g)
    return state


@pytest.fixture(scope="module")
def r50():
    return _random_state("resnet50")


@pytest.fixture(scope="module")
def r18():
    return _random_state("resnet18")


def _assert_loaded(model, state, fresh_fc):
    own = model.state_dict()
    for k, v in state.items():
        if not k.startswith("fc."):
            assert torch.equal(own[k], v), k
    assert torch.equal(own["fc.weight"], fresh_fc[0]) and torch.equal(own["fc.bias"], fresh_fc[1])


@pytest.mark.parametrize("legacy", [False, True])
def test_resnet50_weights_load_in_either_format_with_a_new_head(tmp_path, r50, legacy):
    path = tmp_path / "weights.pth"
    torch.save(r50, path, _use_new_zipfile_serialization=not legacy)
    m = create_model("resnet50", input_shape=IMAGENET, num_classes=14)
    fresh_fc = m.fc.weight.detach().clone(), m.fc.bias.detach().clone()
    report = load_pretrained(m, path, model_name="resnet50")
    _assert_loaded(m, r50, fresh_fc)
    assert report.path == path and report.sha256_prefix is None and not report.hash_checked
    assert report.tensors_loaded == 318 and report.dropped == ("fc.weight", "fc.bias") and report.kept == ()
    assert m.fc.out_features == 14


def test_module_prefix_wrapper_and_missing_num_batches_tracked_load(tmp_path, r18):
    path = tmp_path / "ddp.pth"
    state = {f"module.{k}": v for k, v in r18.items() if not k.endswith("num_batches_tracked")}
    torch.save({"epoch": 89, "state_dict": state, "optimizer": {"lr": torch.tensor(0.1)}}, path)
    m = create_model("resnet18", input_shape=(3, 128, 160), num_classes=3)
    fresh_fc = m.fc.weight.detach().clone(), m.fc.bias.detach().clone()
    report = load_pretrained(m, path, model_name="resnet18")
    _assert_loaded(m, {k: v for k, v in r18.items() if not k.endswith("num_batches_tracked")}, fresh_fc)
    assert len(report.kept) == 20 and all(k.endswith("num_batches_tracked") for k in report.kept)
    assert int(m.bn1.num_batches_tracked) == 0  # the model's own, kept
    assert report.tensors_loaded == 122 - 20 - 2

    torch.save({"model": r18}, path)
    load_pretrained(m, path, model_name="resnet18")
    assert torch.equal(m.bn1.num_batches_tracked, r18["bn1.num_batches_tracked"])


def _error(tmp_path, state, *, name="resnet18", model=None, file="w.pth") -> str:
    path = tmp_path / file
    torch.save(state, path)
    model = model or create_model(name, input_shape=IMAGENET, num_classes=5)
    with pytest.raises(InputError) as e:
        load_pretrained(model, path, model_name=name)
    message = str(e.value)
    assert "\n" not in message and str(path) in message
    return message


def test_a_wrong_shape_is_named_with_both_shapes(tmp_path, r18):
    state = dict(r18, **{"layer3.1.conv2.weight": torch.zeros(256, 256, 1, 1)})
    message = _error(tmp_path, state)
    assert "layer3.1.conv2.weight" in message and "(256, 256, 1, 1)" in message and "(256, 256, 3, 3)" in message


def test_other_input_channels_say_so(tmp_path, r18):
    m = create_model("resnet18", input_shape=(1, 224, 224), num_classes=5)
    assert m.conv1.weight.shape == (64, 1, 7, 7)
    message = _error(tmp_path, r18, model=m)
    assert "3 channels" in message and "have 1" in message and "--pretrained none" in message


def test_missing_and_extra_keys_are_counted_and_named(tmp_path, r18):
    state = {k: v for k, v in r18.items() if not k.startswith("layer4.1.")}
    message = _error(tmp_path, state)
    assert "lacks 10 tensors" in message and "layer4.1.conv1.weight" in message and "..." in message
    assert "does not have" not in message

    state = dict(r18, **{"layer5.0.conv1.weight": torch.zeros(1), "extra": torch.zeros(1)})
    message = _error(tmp_path, state)
    assert "has 2 tensors that resnet18 does not have (layer5.0.conv1.weight, extra)" in message
    assert "lacks" not in message

    message = _error(tmp_path, r18, name="resnet34")  # resnet18 weights for resnet34
    # resnet34's 8 more BasicBlocks hold 10 tensors each, besides num_batches_tracked.
    assert "lacks 80 tensors that resnet34 needs" in message


def test_unreadable_files_and_other_contents(tmp_path, r18):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    m = create_model("resnet18", input_shape=IMAGENET, num_classes=5)
    with pytest.raises(InputError, match=r"cannot read pretrained weights from .*junk\.pth"):
        load_pretrained(m, tmp_path / "junk.pth", model_name="resnet18")
    torch.save(r18, tmp_path / "whole.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "whole.pth").read_bytes()[:100_000])
    with pytest.raises(InputError, match="cannot read pretrained weights"):
        load_pretrained(m, tmp_path / "cut.pth", model_name="resnet18")
    assert "not a state dict" in _error(tmp_path, [torch.zeros(1)])
    assert "not a state dict" in _error(tmp_path, {"conv1.weight": 3})


def test_missing_file_unknown_model_and_cifar_resnet(tmp_path):
    m = create_model("resnet18", input_shape=IMAGENET, num_classes=5)
    with pytest.raises(InputError, match=r"file .*nowhere\.pth does not exist"):
        load_pretrained(m, tmp_path / "nowhere.pth", model_name="resnet18")
    for name in ("lenet", "mlp"):
        with pytest.raises(InputError, match="exist only for resnet18, resnet34, resnet50"):
            load_pretrained(m, tmp_path / "nowhere.pth", model_name=name)
        with pytest.raises(InputError, match="exist only for resnet18, resnet34, resnet50"):
            find_pretrained(name, environ={"TORCH_HOME": str(tmp_path)})
    cifar = create_model("resnet18", input_shape=(3, 32, 32), num_classes=5)
    with pytest.raises(InputError, match="at least 128 pixels"):
        load_pretrained(cifar, tmp_path / "nowhere.pth", model_name="resnet18")


def test_hash_in_the_file_name_is_checked(tmp_path, r50):
    source = tmp_path / "plain.pth"
    torch.save(r50, source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    good = tmp_path / f"resnet50-{digest[:8]}.pth"
    os.link(source, good)
    m = create_model("resnet50", input_shape=IMAGENET, num_classes=2)
    report = load_pretrained(m, good, model_name="resnet50")
    assert report.sha256_prefix == digest[:8] and report.hash_checked and report.tensors_loaded == 318

    wrong = "0" * 8 if not digest.startswith("0" * 8) else "f" * 8
    bad = tmp_path / f"resnet50-{wrong}.pth"
    os.link(source, bad)
    with pytest.raises(InputError) as e:
        load_pretrained(m, bad, model_name="resnet50")
    assert f"starts with {wrong}" in str(e.value) and f"starts with {digest[:8]}" in str(e.value)

    # Fewer than 8 hex digits: not torchvision's naming, so no hash check, and the file is read.
    short = tmp_path / f"resnet50-{wrong[:6]}.pth"
    short.write_bytes(b"junk")
    with pytest.raises(InputError, match="cannot read pretrained weights"):
        load_pretrained(m, short, model_name="resnet50")
    # A torchvision name for another model is refused before anything is read.
    other = tmp_path / f"resnet18-{digest[:8]}.pth"
    os.link(source, other)
    with pytest.raises(InputError, match="named as resnet18 weights, but the model is resnet50"):
        load_pretrained(m, other, model_name="resnet50")


def test_find_pretrained_looks_where_torch_hub_keeps_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setitem(KNOWN_FILES, "resnet18", ("resnet18-new.pth", "resnet18-old.pth"))
    home = tmp_path / "th"
    environ = {"TORCH_HOME": str(home), "XDG_CACHE_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "h")}
    assert checkpoint_dir(environ=environ) == home / "hub" / "checkpoints"
    assert find_pretrained("resnet18", environ=environ) is None
    (home / "hub" / "checkpoints").mkdir(parents=True)
    (home / "hub" / "checkpoints" / "resnet18-old.pth").write_bytes(b"x")
    assert find_pretrained("resnet18", environ=environ) == home / "hub" / "checkpoints" / "resnet18-old.pth"
    (home / "hub" / "checkpoints" / "resnet18-new.pth").write_bytes(b"x")
    assert find_pretrained("resnet18", environ=environ) == home / "hub" / "checkpoints" / "resnet18-new.pth"
    assert find_pretrained("resnet50", environ=environ) is None

    del environ["TORCH_HOME"]
    assert checkpoint_dir(environ=environ) == tmp_path / "xdg" / "torch" / "hub" / "checkpoints"
    del environ["XDG_CACHE_HOME"]
    assert checkpoint_dir(environ=environ) == tmp_path / "h" / ".cache" / "torch" / "hub" / "checkpoints"
    monkeypatch.setenv("TORCH_HOME", str(home))
    assert find_pretrained("resnet18") == home / "hub" / "checkpoints" / "resnet18-new.pth"


def test_missing_weights_message_says_where_and_what():
    message = missing_weights_message("resnet50", environ={"TORCH_HOME": "/data/th"})
    assert "/data/th/hub/checkpoints" in message and "\n" not in message
    assert all(name in message for name in pretrained.KNOWN_FILES["resnet50"])
    assert "--pretrained PATH" in message and "--pretrained none" in message
    with pytest.raises(InputError, match="exist only for"):
        missing_weights_message("lenet")


@pytest.mark.parametrize("channels_last", [False, True])
def test_resnet50_forward_gives_one_logit_per_class(channels_last):
    torch.manual_seed(0)
    m = create_model("resnet50", input_shape=(3, 64, 64), num_classes=6).eval()
    x = torch.randn(2, 3, 64, 64)
    if channels_last:
        m, x = m.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        y = m(x)
    assert y.shape == (2, 6) and torch.isfinite(y).all()


def test_weights_files_that_are_no_state_dict_or_damaged_say_what_they_are(tmp_path, r18):
    m = create_model("resnet18", input_shape=IMAGENET, num_classes=5)
    (tmp_path / "noise.pth").write_bytes(np.random.RandomState(0).bytes(5000))
    torch.save(torch.nn.Linear(2, 3), tmp_path / "model.pth")  # a whole pickled model
    broken = dict(r18)
    broken["layer1.0.conv1.weight"] = broken["layer1.0.conv1.weight"].clone()
    broken["layer1.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    torch.save(broken, tmp_path / "nan.pth")
    messages = {}
    for name in ("noise", "model", "nan"):
        with pytest.raises(InputError) as e:
            load_pretrained(m, tmp_path / f"{name}.pth", model_name="resnet18")
        messages[name] = str(e.value)
    assert messages["noise"] == (
        f"cannot read pretrained weights from {tmp_path / 'noise.pth'}: it is not a weights "
        f"file written by torch.save (a .pth file holding a state dict)"
    )
    assert "holds a pickled Python object (a whole model?), not a state dict" in messages["model"]
    assert messages["nan"] == (
        f"pretrained weights file {tmp_path / 'nan.pth'} holds NaN or infinite values in 1 "
        f"tensor (layer1.0.conv1.weight); the file is damaged"
    )
    assert all("\x1b" not in text and "weights_only" not in text for text in messages.values())


def test_a_bad_weights_file_is_refused_before_any_image_is_packed(tmp_path, monkeypatch):
    import memomentum.runner.pipeline
    from memomentum import RunConfig, run

    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    monkeypatch.setattr(
        memomentum.runner.pipeline, "prepare_data", lambda *a, **k: pytest.fail("the data were loaded first")
    )
    with pytest.raises(InputError, match="cannot read pretrained weights from"):
        run(RunConfig(dataset=str(tmp_path), pretrained=str(tmp_path / "junk.pth"), progress=False))


def test_a_folder_given_as_the_weights_file_is_named_a_folder(tmp_path):
    from memomentum.training.pretrained import check_weights_file

    (tmp_path / "weights.pth").mkdir()
    with pytest.raises(InputError, match=r"weights\.pth is a folder; give the path of a \.pth file in it"):
        check_weights_file(tmp_path / "weights.pth")
