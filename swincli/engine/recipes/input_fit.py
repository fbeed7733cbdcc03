"""The input size and window the ``auto`` recipe fits to the images (docs/training.md, "Input size and window").

Training 64 px images at a model's 224 px adds pixels, not information, at 12x the compute; a window
that does not divide the stage maps pads them. From scratch the recipe picks both; a fine-tune keeps
them and names what fits. Every choice is a note that names its flag."""

from __future__ import annotations

from swincli.engine.train_config import TrainConfig
from swincli.errors import SwinError
from swincli.models.complexity import count_macs
from swincli.models.config import SwinConfig, to_pair

UPSAMPLE_NOTE = 1.1  # fine-tuning at a side this much above the images' own is worth a note


def unit(config: SwinConfig) -> int:
    """The side step at which every stage map is whole: patch x 2^(stages - 1) (32 for every Swin)."""
    return config.patch_size * 2 ** (config.num_stages - 1)


def side_for_images(image_side: int, config: SwinConfig) -> int:
    """From scratch: the images' side to the nearest :func:`unit` (at least one), at most the model's side.

    Training above the images' own side adds pixels, not information, at a cost that grows with the
    square of the side (swin-nano: 12x the MACs at 224 px as at 64)."""
    step = unit(config)
    return max(step, min(min(config.image_hw), int(image_side / step + 0.5) * step))


def window_fits(config: SwinConfig, side: int, window: int) -> bool:
    """No stage map padded to a window multiple, no window clipped before the last stage (where the
    official rule clips routinely: Swin-T's 7 on its 7x7 map, 12 on V2-B/192's 6x6)."""
    layout = config.replace(img_size=side, window_size=window).layout()
    return all(st.padded == st.resolution and (st is layout[-1] or window <= min(st.resolution)) for st in layout)


def window_problem(config: SwinConfig, side: int, window: int) -> str:
    """What ``window`` does at ``side`` that a fitting one does not, for a note."""
    layout = config.replace(img_size=side, window_size=window).layout()
    padded = [st for st in layout if st.padded != st.resolution]
    if padded:
        maps = lambda key: ", ".join(str(getattr(st, key)[0]) for st in padded)
        return f"pads the stage maps {maps('resolution')} to {maps('padded')}"
    clipped = ", ".join(str(st.resolution[0]) for st in layout[:-1] if window > min(st.resolution))
    return f"is larger than the stage maps {clipped} (clipped: they attend globally, without shift)"


def fitting_window(config: SwinConfig, side: int, window: int, near: float | None = None) -> int | None:
    """The window to use at ``side`` instead of ``window`` (None: ``window`` fits, or only 1 would): the
    fitting one nearest to ``near`` (default ``window``), the larger on a tie."""
    if window_fits(config, side, window):
        return None
    near = window if near is None else near
    fits = [w for w in range(2, side // config.patch_size + 1) if window_fits(config, side, w)]
    return min(fits, key=lambda w: (abs(w - near), -w)) if fits else None


def macs_ratio(config: SwinConfig, before: tuple[int, int], after: tuple[int, int]) -> float:
    """MACs at (side, window) ``before`` over those at ``after``: what a choice saves."""
    at = lambda side, win: count_macs(config.replace(img_size=side, window_size=win)).total
    return at(*before) / at(*after)


def square_window(config: SwinConfig) -> int | None:
    """The config's window when it is one square window for every stage (else None: left alone)."""
    windows = set(config.stage_windows)
    (h, w), = windows if len(windows) == 1 else ((0, 1),)
    return h if h == w else None


def square_side(size) -> int | None:
    """``size`` as one side, or None when it is not square."""
    h, w = to_pair(size)
    return h if h == w else None


def fit_input(cfg: TrainConfig, config: SwinConfig | None, finetune: bool,
              images: tuple[int, int] | None) -> int | None:  # fmt: skip
    """The side the run trains at (None: not known yet), from ``config`` (the weights' own; None: read
    later) and ``images`` ((median side, images read); None: not read). From scratch it sets --size from
    the images and --window to fit, where not given; otherwise it notes an upsampling fine-tune and
    names a window that fits. Each choice is a note naming its flag."""
    if config is None or (cfg.size is not None and square_side(cfg.size) is None):
        return None  # foreign weights (read later), a non-square --size: left to the model's own notes
    try:
        window = square_window(config if cfg.window is None else config.replace(window_size=cfg.window))
    except SwinError:  # a window the model refuses: resolve() says so
        return None
    whose = "the checkpoint's" if cfg.checkpoint else f"{cfg.model or 'swin-nano'}'s"
    own = min(config.image_hw)
    if not finetune and cfg.size is None and images and side_for_images(images[0], config) != own:
        _size_from_images(cfg, config, images, window, whose)
    side = square_side(cfg.size) if cfg.size is not None else own
    if finetune and cfg.size is None and images and side > UPSAMPLE_NOTE * images[0]:
        cfg.notes.append(f"the images are about {images[0]} px (median of {images[1]:,} images): fine-tuning upsamples "
                         f"them {side / images[0]:.1f}x to {whose} {side} px (--size sets the size)")  # fmt: skip
    if window:
        # a fine-tune at a new size keeps the part of the image a window covers (the official 192/12 -> 384/24)
        _fit_window(cfg, config, side, window, window * side / own if finetune else window, whose, finetune)
    return side


def _size_from_images(cfg: TrainConfig, config: SwinConfig, images: tuple[int, int], window: int | None,
                      whose: str) -> None:  # fmt: skip
    """From scratch, no --size: train at the images' side (rounded), and say what the model's would cost."""
    own, side = min(config.image_hw), side_for_images(images[0], config)
    cfg.size = side
    if window:
        after = (fitting_window(config, side, window) if cfg.window is None else None) or window
        cost = macs_ratio(config, (own, window), (side, after))
    else:
        cost = (own / side) ** 2
    cfg.notes.append(f"size {side} (--size): the images are about {images[0]} px (median of {images[1]:,} images); "
                     f"{whose} {own} px would take {cost:.0f}x the compute")  # fmt: skip


def _fit_window(cfg: TrainConfig, config: SwinConfig, side: int, window: int, near: float, whose: str,
                finetune: bool) -> None:  # fmt: skip
    """A window that does not fit ``side`` is replaced (from scratch, no --window) or a fitting one named."""
    better = fitting_window(config, side, window, near)
    if better is None:
        return
    problem, cost = window_problem(config, side, window), macs_ratio(config, (side, window), (side, better))
    if cfg.window is None and not finetune:
        cfg.window = better
        cfg.notes.append(f"window {better} (--window): {whose} {window} {problem} at {side} px, at {cost:.1f}x the "
                         f"compute of {better}")  # fmt: skip
    else:
        cfg.notes.append(f"window {window} {problem} at {side} px; --window {better} fits, at {1 / cost:.2f}x the compute")
