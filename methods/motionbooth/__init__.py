"""``motionbooth``: MotionBooth's subject learning (Wu et al., NeurIPS 2024; jianzongwu/MotionBooth)
on the shared CogVideoX transformer, the fifth row of DualReal's Table 1.

  * :mod:`.config`    -- :class:`MotionBoothConfig` (schedule, loss weights, token, masks, clips);
  * :mod:`.losses`    -- the subject region loss, the subject-token cross-attention loss on the
                         joint attention's slice (and its full-map reference);
  * :mod:`.attention` -- the attention processor that records that slice during training;
  * :mod:`.masks`     -- subject masks: mask file, alpha channel, SAM or full frame; cached;
  * :mod:`.data`      -- the prepared case and the pool of unrelated captioned clips;
  * :mod:`.prepare`   -- a case prepared: images encoded, masks, caption with the unique token;
  * :mod:`.training`  -- a step's two micro-batches (subject images, unrelated clips), their losses;
  * :mod:`.method`    -- :class:`MotionBoothMethod` (train / generate / state / teardown).
"""

from .config import MotionBoothConfig
from .method import MotionBoothMethod
from .prepare import with_unique_token

__all__ = ["MotionBoothConfig", "MotionBoothMethod", "with_unique_token"]
