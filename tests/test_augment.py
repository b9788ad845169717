"""On-device augmentation: same distribution as RandomCrop(32, padding=4) + RandomHorizontalFlip."""

import torch
import torchvision.transforms.functional as TF

from ltbench.datasets import augment

CPU = torch.device("cpu")


def images(n=6):
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def test_crop_offsets_are_uniform_over_the_9_shifts_per_axis():
    offsets = augment.crop_offsets(90_000, 4, torch.Generator().manual_seed(0), CPU)
    assert offsets.min() == 0 and offsets.max() == 8  # shifts of -4..+4 pixels
    for axis in (0, 1):
        freq = torch.bincount(offsets[:, axis], minlength=9).double() / len(offsets)
        assert torch.allclose(freq, torch.full((9,), 1 / 9, dtype=torch.float64), atol=0.006)
    # the two axes are drawn independently, as torchvision does
    joint = torch.bincount(offsets[:, 0] * 9 + offsets[:, 1], minlength=81).double() / len(offsets)
    assert torch.allclose(joint, torch.full((81,), 1 / 81, dtype=torch.float64), atol=0.0025)


def test_crop_matches_torchvision_pad_then_crop_at_the_same_offset():
    x = images()
    offsets = augment.crop_offsets(len(x), 4, torch.Generator().manual_seed(2), CPU)
    out = augment.crop(x, offsets, 4)
    for img, (top, left), got in zip(x, offsets.tolist(), out):
        expected = TF.crop(TF.pad(img, [4], fill=0), top, left, 32, 32)
        assert torch.equal(got, expected)


def test_flip_probability_is_one_half():
    mask = augment.flip_mask(100_000, torch.Generator().manual_seed(0), CPU)
    assert abs(mask.double().mean().item() - 0.5) < 0.008  # > 5 sigma


def test_flip_mirrors_only_selected_images():
    x = images(4)
    mask = torch.tensor([True, False, True, False])
    out = augment.flip(x, mask)
    for img, m, got in zip(x, mask, out):
        assert torch.equal(got, TF.hflip(img) if m else img)


def test_augment_keeps_shape_dtype_and_is_reproducible():
    x = images(16)
    a = augment.augment(x, 4, True, torch.Generator().manual_seed(5))
    b = augment.augment(x, 4, True, torch.Generator().manual_seed(5))
    assert a.shape == x.shape and a.dtype == torch.uint8 and torch.equal(a, b)
    assert torch.equal(augment.augment(x, 0, False, torch.Generator()), x)


def test_normalize_matches_to_tensor_then_normalize():
    x = images(2)
    mean, std = torch.tensor([0.49, 0.48, 0.45]), torch.tensor([0.25, 0.24, 0.26])
    expected = TF.normalize(x.float() / 255, mean.tolist(), std.tolist())
    assert torch.allclose(augment.normalize(x, mean, std), expected, atol=1e-6)


def test_crop_follows_the_input_size():
    """Any image size (a dataset's image_size), square or not: same as torchvision's pad then crop at H x W."""
    for h, w in ((64, 64), (28, 40)):
        x = torch.randint(0, 256, (5, 3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(h))
        offsets = augment.crop_offsets(len(x), 4, torch.Generator().manual_seed(3), CPU)
        out = augment.crop(x, offsets, 4)
        assert out.shape == x.shape
        for img, (top, left), got in zip(x, offsets.tolist(), out):
            assert torch.equal(got, TF.crop(TF.pad(img, [4], fill=0), top, left, h, w))
        assert augment.augment(x, 4, True, torch.Generator().manual_seed(0)).shape == x.shape


def test_runs_augmented_together_get_what_each_gets_alone():
    images = torch.randint(0, 256, (3, 16, 3, 32, 32), dtype=torch.uint8)
    seeds = (0, 1, 0)  # two runs of one seed (two strategies) draw alike
    together = augment.augment_runs(images, 4, True, [torch.Generator().manual_seed(s) for s in seeds])
    alone = [augment.augment(images[r], 4, True, torch.Generator().manual_seed(s)) for r, s in enumerate(seeds)]
    assert torch.equal(together, torch.stack(alone))
    assert torch.equal(augment.augment_runs(images, 0, False, [torch.Generator()] * 3), images)
