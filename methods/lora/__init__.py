"""LoRA (the baseline of DualReal's Table 1): one LoRA for the identity, one for the motion,
trained apart and fused at inference.

  * :mod:`.config` -- :class:`LoRAConfig`: rank, alpha, target layers, schedules, the fusion;
  * :mod:`.method` -- :class:`LoRAMethod`: the two peft adapters on the shared transformer, their
                      training, the two fusions (the module's docstring says how each computes).

Registered as ``lora`` (``dualreal_bench.methods.lora:LoRAMethod``).
"""

from .config import LoRAConfig
from .method import LoRAMethod

__all__ = ["LoRAConfig", "LoRAMethod"]
