"""Test-only: swap the md5 sums torchvision expects for CIFAR files by those of generated files."""


def patch(module, overrides: dict[str, str]) -> None:
    """In ``module`` (torchvision.datasets.cifar), replace the md5 of every file named in ``overrides``."""
    for cls in (module.CIFAR10, module.CIFAR100):
        for attr in ("train_list", "test_list"):
            if attr in vars(cls):
                setattr(cls, attr, [[name, overrides.get(name, md5)] for name, md5 in getattr(cls, attr)])
        if "meta" in vars(cls):
            cls.meta = {**cls.meta, "md5": overrides.get(cls.meta["filename"], cls.meta["md5"])}
