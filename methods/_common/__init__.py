"""Training pieces the bundled methods share; no method's package owns them.

  * :mod:`.config`        -- :class:`TrainingConfig` (the shared training options and their
                             validation) and :class:`ImageConditionConfig` (the image condition);
  * :mod:`.data`          -- reading and encoding a case once (:class:`TrainingData`), captions,
                             the shuffled restartable loader, batch stacking;
  * :mod:`.optim`         -- AdamW (8-bit on CUDA when available) and the warm-up schedules;
  * :mod:`.step`          -- one optimizer step: the batch's draws, micro-batched backward, update;
  * :mod:`.loop`          -- one stage, a sequence of stages (built from those steps); state checks;
  * :mod:`.hooks`         -- forward hooks on a CogVideoX transformer, attached and removed together;
  * :mod:`.adapters`      -- the bottleneck adapter and the fused weighted mix of adapters;
  * :mod:`.image_encoder` -- the condition image encoder (OpenCLIP ViT-H-14, or a tiny one).

Which method uses what: DualReal and DreamVideo use all of it (DualReal runs its own
gradient-masked loop from :func:`.step.optimizer_step`); LoRA and sequential fine-tuning use
the config, data, optim, step and loop modules.
"""
