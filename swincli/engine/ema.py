"""An exponential moving average of the weights: validation and saved weights use it with ``--ema``."""

from __future__ import annotations

import torch

from swincli.engine.train_config import TrainConfig
from swincli.errors import SwinUsageError


class Ema:
    """Exponential moving average of the weights (and a copy of the buffers), updated every optimizer step."""

    def __init__(self, model, decay: float) -> None:
        import copy

        self.module = copy.deepcopy(model).eval()
        self.decay = decay
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model) -> None:
        for e, p in zip(self.module.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1.0 - self.decay)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)


def make_ema(model, cfg: TrainConfig):
    if cfg.ema is None:
        return None
    if cfg.fsdp:
        raise SwinUsageError("--ema with --fsdp is not supported", hint="drop --ema or use DDP")
    if not 0.0 < cfg.ema < 1.0:
        raise SwinUsageError("--ema must be in (0, 1), e.g. 0.9998")
    return Ema(model, cfg.ema)
