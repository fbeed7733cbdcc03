"""Whether anyone can observe a module's call: its own forward hooks, or hooks registered for every module.

The model skips a submodule's ``__call__`` only where this says no one can tell (an idle dropout under
SDPA, the blocked inference path); everywhere else every submodule is called on every forward.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules import module as module_hooks


def hooked(module: nn.Module) -> bool:
    """Forward (pre-)hooks on ``module`` itself."""
    return bool(module._forward_hooks or module._forward_pre_hooks)


def global_hooks() -> bool:
    """Forward (pre-)hooks registered for every module with ``nn.modules.module.register_module_forward_hook``
    (FLOP counters and module trackers use these)."""
    names = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_forward_hooks_always_called")
    return any(getattr(module_hooks, name, None) for name in names)
