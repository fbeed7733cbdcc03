import pytest
import torch

from swincli import count_macs, count_params, create_model, get_entry, list_models
from swincli.errors import UnknownModelError
from swincli.models.registry import get_weights

# parameter counts of the reference implementations (1000 classes)
PARAMS = {
    "swin-t": 28_288_354,
    "swin-s": 49_606_258,
    "swin-b": 87_768_224,
    "swin-l": 196_532_476,
    "swinv2-t": 28_347_154,
    "swinv2-s": 49_728_418,
    "swinv2-b": 87_918_816,
}

# the official flops() (MACs), in G, from the reference variant table
GMACS = {
    "swin_tiny_patch4_window7_224": 4.49,
    "swin_small_patch4_window7_224": 8.75,
    "swin_base_patch4_window7_224": 15.44,
    "swin_base_patch4_window12_384": 47.11,
    "swin_large_patch4_window7_224": 34.49,
    "swin_large_patch4_window12_384": 103.95,
    "swinv2_tiny_window8_256": 5.93,
    "swinv2_tiny_window16_256": 6.61,
    "swinv2_small_window8_256": 11.51,
    "swinv2_small_window16_256": 12.65,
    "swinv2_base_window8_256": 20.29,
    "swinv2_base_window16_256": 21.80,
    "swinv2_base_window12_192": 11.78,
    "swinv2_base_window12to24_192to384": 54.75,
    "swinv2_large_window12_192": 26.00,
    "swinv2_large_window12to16_192to256": 47.49,
    "swinv2_large_window12to24_192to384": 115.42,
}


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name, expected", PARAMS.items())
def test_parameter_counts_equal_the_reference(name, expected):
    with torch.device("meta"):
        model = create_model(name, num_classes=1000)
    assert n_params(model) == expected
    assert count_params(model.config) == expected


@pytest.mark.parametrize("entry", list_models(), ids=lambda e: e.name)
def test_analytic_parameter_count_matches_every_built_variant(entry):
    with torch.device("meta"):
        model = create_model(entry.name)
    assert count_params(model.config) == n_params(model)


@pytest.mark.parametrize("name, gmacs", GMACS.items())
def test_macs_reproduce_the_official_flops(name, gmacs):
    assert round(count_macs(get_entry(name).build_config()).total / 1e9, 2) == gmacs


def test_paper_scale_models():
    assert round(count_params(get_entry("swinv2-h").build_config()) / 1e6) == 658
    assert round(count_params(get_entry("swinv2-g").build_config()) / 1e9, 1) == 3.0


def test_aliases_and_tags_resolve():
    assert get_entry("swinv2-l").name == "swinv2_large_window12to16_192to256"
    assert get_entry("SWIN-T").name == "swin_tiny_patch4_window7_224"
    assert get_entry("swinv2_base_window12to24_192to384.ms_in22k_ft_in1k").config["pretrained_window_sizes"] == (12, 12, 12, 6)
    assert get_weights("swinv2_base_window12_192").num_classes == 21841
    assert create_model("swinv2_base_window12_192", img_size=64).config.num_classes == 21841


def test_unknown_names_suggest_close_ones():
    with pytest.raises(UnknownModelError, match="unknown model") as info:
        get_entry("swin-tt")
    assert "swin-t" in info.value.hint
    with pytest.raises(UnknownModelError, match="no weights tagged"):
        get_weights("swin-t.bogus")


def test_overrides():
    model = create_model("swinv2-nano", img_size=(128, 192), window_size=4, num_classes=3, in_chans=1, shift=False)
    assert model.config.image_hw == (128, 192) and model.head.out_features == 3
    assert model(torch.randn(1, 1, 128, 192)).shape == (1, 3)
    with pytest.raises(TypeError, match="unsupported overrides"):
        create_model("swin-t", depth=3)


def test_list_filters():
    names = [e.name for e in list_models("swinv2*", pretrained=True)]
    assert "swinv2_base_window8_256" in names and "swinv2_nano_window8_256" not in names
    assert all(e.config["version"] == 1 for e in list_models(version=1))
    assert [e.name for e in list_models("swin-b")] == ["swin_base_patch4_window7_224"]
