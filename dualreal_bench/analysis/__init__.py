"""What ``dualreal-bench inspect`` and ``estimate`` compute, as library functions.

* :mod:`.params` — a backbone's transformer on the meta device; parameters a method trains
  per component, frozen helper models;
* :mod:`.memory` — the memory model: each kind of training step (activations autograd keeps,
  measured on the meta device; weights, gradients, optimizer states), encoding and generation;
* :mod:`.meta_measure` — the memory model's measurements on the meta device: what autograd
  saves in a training forward, the peaks of the denoising forward, the VAE and the text encoder;
* :mod:`.tracker` — :class:`~.tracker.LiveBytes`, the peak bytes a computation allocates
  (meta tensors included);
* :mod:`.budget` — ``memory_budget``: the settings that fit a budget (micro-batches,
  offloaded encoders, checkpointing);
* :mod:`.inspection` — :func:`~.inspection.inspect_method`: all of it, for one method and
  profile;
* :mod:`.cost` — :func:`~.cost.estimate`: unit costs measured here, projected onto a suite.

The first four load torch and diffusers when imported; :mod:`.cost` loads them only when
it runs.
"""

#: bytes in a GiB, the unit both commands print
GIB = 1024**3
