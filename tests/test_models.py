"""Parameter counts and output shapes of the architectures: the CIFAR ResNet family and VGG-16-BN."""

import pytest
import torch

from ltbench.methods.models import ARCHITECTURES, RESNET_DEPTHS, build_model, cifar_resnet


@pytest.mark.parametrize(
    "arch, classes, params",
    [
        ("resnet32", 10, 464_154),  # He et al.: 0.46M
        ("resnet32", 100, 470_004),  # head 64*100+100 instead of 64*10+10
        ("resnet8", 10, 75_290),  # one block per stage
        ("resnet20", 10, 269_722),  # He et al.: 0.27M
        ("resnet56", 10, 853_018),  # He et al.: 0.85M
        ("resnet110", 10, 1_727_962),  # He et al.: 1.7M
        ("vgg16bn", 10, 14_728_266),
        ("vgg16bn", 100, 14_774_436),  # head 512*100+100 instead of 512*10+10
    ],
)
def test_parameter_count_and_output_shape(arch, classes, params):
    model = build_model(arch, classes)
    assert sum(p.numel() for p in model.parameters()) == params
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, classes)


def test_resnet32_has_15_blocks_and_31_convolutions():
    model = build_model("resnet32", 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(model.blocks) == 15 and len(convs) == 31  # 1 stem + 2 per block; option A adds none


def test_vgg16bn_has_13_conv_bn_layers_and_5_pools():
    model = build_model("vgg16bn", 10)
    kinds = [type(m).__name__ for m in model.features]
    assert kinds.count("Conv2d") == 13 and kinds.count("BatchNorm2d") == 13 and kinds.count("MaxPool2d") == 5


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture 'resnet18'"):
        build_model("resnet18", 10)


def test_cosine_head_outputs_cosines():
    model = build_model("resnet32", 10, head="cosine")
    assert sum(p.numel() for p in model.parameters()) == 464_154 - 10  # no bias
    out = model(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 10) and out.abs().max() <= 1.0 + 1e-6
    with pytest.raises(ValueError, match="unknown head 'mlp'"):
        build_model("vgg16bn", 10, head="mlp")


@pytest.mark.parametrize("depth", RESNET_DEPTHS)
def test_resnet_family_has_n_blocks_per_stage(depth):
    model = build_model(f"resnet{depth}", 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(model.blocks) == 3 * (depth - 2) // 6 and len(convs) + 1 == depth  # conv layers + the head


def test_resnet32_is_unchanged_by_the_family():
    """Same parameters, same initialisation from the same seed as the one ResNet-32 of the benchmarks."""
    from ltbench.methods.models import ResNetCifar

    torch.manual_seed(0)
    direct = ResNetCifar(10, blocks=5).state_dict()
    torch.manual_seed(0)
    registry = build_model("resnet32", 10).state_dict()
    assert list(direct) == list(registry) and all(torch.equal(direct[k], registry[k]) for k in direct)


def test_a_depth_outside_the_family_is_refused():
    assert "resnet18" not in ARCHITECTURES
    with pytest.raises(ValueError, match="depth 6n \\+ 2 .* not 18"):
        cifar_resnet(18)
