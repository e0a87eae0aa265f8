"""DualReal (Wang et al., ICCV 2025): adaptive joint training for identity-motion fusion.

Modules, split as peft splits a tuner:
  * :mod:`.config`      -- :class:`DualRealConfig`, the paper's and the authors' defaults;
  * :mod:`.adapters`    -- the dual-aware identity/motion adapter pair at each block place;
  * :mod:`.controller`  -- the StageBlender controller and the block-to-group mapping;
  * :mod:`.model`       -- :class:`DualRealModel`: every learned module and the forward hooks
                           that attach them to a diffusers CogVideoX transformer;
  * :mod:`.training`    -- the gradient-masked joint training loop;
  * :mod:`.method`      -- :class:`DualRealMethod`, the benchmark's Method.

The condition image encoder, data preparation, optimizer and hooks are
:mod:`dualreal_bench.methods._common`'s, shared with the baselines.

Registered as ``dualreal`` (``dualreal_bench.methods.dualreal:DualRealMethod``).
"""

from .config import DualRealConfig
from .method import DualRealMethod
from .model import DualRealModel

__all__ = ["DualRealConfig", "DualRealMethod", "DualRealModel"]
