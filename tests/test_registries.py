"""One source of truth: every name list in the config schema is a registry's keys."""

from __future__ import annotations

import yaml

from conftest import REPO
from ltbench.methods import models
from ltbench.training import replicas
from ltbench.datasets import sources
from ltbench import strategies
from ltbench.training.devices import DEVICE_CHOICES

SCHEMA = yaml.safe_load((REPO / "rules/schemas/config.schema.yaml").read_text())["properties"]


def test_schema_enums_are_the_registries():
    dataset = SCHEMA["datasets"]["additionalProperties"]["properties"]
    benchmark = SCHEMA["benchmarks"]["additionalProperties"]["properties"]
    train = SCHEMA["train"]["properties"]
    assert dataset["format"]["enum"] == list(sources.FORMATS)
    assert benchmark["arch"]["else"]["enum"] == list(models.ARCHITECTURES)  # one architecture
    assert benchmark["arch"]["then"]["items"] == benchmark["arch"]["else"]  # or a grid of them
    assert train["device"]["enum"] == list(DEVICE_CHOICES)
    assert train["compile"]["enum"] == [False, *replicas.COMPILE_MODES]
    assert strategies.HEADS == tuple(models.HEADS)
