"""What ``dualreal-bench inspect`` and ``estimate`` compute, as library functions.

* :mod:`.params` — a backbone's transformer on the meta device; parameters a method trains
  per component, frozen helper models;
* :mod:`.memory` — activations autograd keeps for one block (measured on the meta device)
  and the training-memory model;
* :mod:`.inspection` — :func:`~.inspection.inspect_method`: both, for one method and profile;
* :mod:`.cost` — :func:`~.cost.estimate`: unit costs measured here, projected onto a suite.

The first three load torch and diffusers when imported; :mod:`.cost` loads them only when
it runs.
"""

#: bytes in a GiB, the unit both commands print
GIB = 1024**3
