import pytest

from swincli.errors import ConfigError
from swincli.models.config import SwinConfig, per_stage


def windows_and_shifts(**kw):
    layout = SwinConfig(**kw).layout()
    return [st.window[0] for st in layout], [st.shift[0] for st in layout]


@pytest.mark.parametrize(
    "kw, windows, shifts",
    [
        (dict(version=1, img_size=224, window_size=7), [7, 7, 7, 7], [3, 3, 3, 0]),
        (dict(version=1, img_size=384, window_size=12), [12, 12, 12, 12], [6, 6, 6, 0]),
        (dict(version=2, img_size=256, window_size=8), [8, 8, 8, 8], [4, 4, 4, 0]),
        (dict(version=2, img_size=256, window_size=16), [16, 16, 16, 8], [8, 8, 0, 0]),
        (dict(version=2, img_size=192, window_size=12), [12, 12, 12, 6], [6, 6, 0, 0]),
        (dict(version=2, img_size=384, window_size=24), [24, 24, 24, 12], [12, 12, 0, 0]),
    ],
)
def test_effective_windows_follow_the_official_clipping_rule(kw, windows, shifts):
    assert windows_and_shifts(**kw) == (windows, shifts)


def test_window_forms():
    assert per_stage(7, 4, "w") == [(7, 7)] * 4
    assert per_stage((7, 9), 4, "w") == [(7, 9)] * 4
    assert per_stage((7, 7, 14, 7), 4, "w") == [(7, 7), (7, 7), (14, 14), (7, 7)]
    assert per_stage([12, 12, (12, 6), 6], 4, "w")[2] == (12, 6)
    with pytest.raises(ConfigError):
        per_stage((7, 7, 7), 4, "w")


def test_non_square_layout_clips_per_dimension():
    cfg = SwinConfig(img_size=(224, 448), window_size=(7, 14))
    last = cfg.layout()[-1]
    assert last.resolution == (7, 14)
    assert last.window == (7, 14) and last.shift == (0, 0)
    first = cfg.layout()[0]
    assert first.window == (7, 14) and first.shift == (3, 7)


def test_padding_is_reported_in_the_layout():
    st = SwinConfig(img_size=200, window_size=7).layout()[0]
    assert st.resolution == (50, 50) and st.padded == (56, 56)


def test_json_round_trip():
    cfg = SwinConfig(version=2, img_size=(256, 320), window_size=[8, 8, (8, 10), 4], pretrained_window_sizes=(12, 12, 12, 6))
    again = SwinConfig.from_json(cfg.to_json())
    assert again == cfg
    assert again.layout() == cfg.layout()


@pytest.mark.parametrize(
    "kw",
    [
        dict(version=3),
        dict(depths=(2, 2), num_heads=(3, 6, 12)),
        dict(embed_dim=96, num_heads=(5, 6, 12, 24)),
        dict(img_size=16),
        dict(window_size=0),
        dict(drop_path_rate=1.5),
    ],
)
def test_impossible_configs_are_refused(kw):
    with pytest.raises(ConfigError):
        SwinConfig(**kw)


def test_unknown_json_fields_are_refused():
    with pytest.raises(ConfigError, match="unknown config fields"):
        SwinConfig.from_dict({"version": 1, "bogus": 3})
