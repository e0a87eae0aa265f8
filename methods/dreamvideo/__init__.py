"""DreamVideo (Wei et al., CVPR 2024) on the DiT: separately trained identity and motion
adapters, combined at inference (a baseline of DualReal's Table 1).

Modules, split as peft splits a tuner:
  * :mod:`.config`   -- :class:`DreamVideoConfig`, the schedules DualReal ran it with;
  * :mod:`.layers`   -- the adapters of one block and the textual-inversion token;
  * :mod:`.model`    -- :class:`DreamVideoModel`: the adapters of every block and the hooks
                        that run them on a diffusers CogVideoX transformer;
  * :mod:`.training` -- the losses of the three training stages; starting the learned token;
  * :mod:`.method`   -- :class:`DreamVideoMethod`, the benchmark's Method.

Registered as ``dreamvideo`` (``dualreal_bench.methods.dreamvideo:DreamVideoMethod``).
"""

from .config import DreamVideoConfig
from .layers import PlaceholderToken
from .method import DreamVideoMethod
from .model import DreamVideoModel

__all__ = ["DreamVideoConfig", "DreamVideoMethod", "DreamVideoModel", "PlaceholderToken"]
