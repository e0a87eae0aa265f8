"""Executors: where the cases of a run execute.

* :mod:`.local` -- one after another in this process (the default);
* :mod:`.ray_executor` -- Ray actors, one per worker, each keeping its own backbone and
  evaluator across cases (``pip install "dualreal-bench[ray]"``).

Both run whole cases through :class:`.worker.CaseWorker` (train -> generate -> evaluate; the
stages are :mod:`.training`, :mod:`.generation` and :mod:`.evaluation`, what a resumed case
skips is :mod:`.resume`'s) into the same store layout, so a run can switch executor, or be sharded (``--shard i/N``), and
resume either way. The runner calls the executors; they never import it.
"""
