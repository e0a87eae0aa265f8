"""Which rows make which of the paper's Tables 1-3.

Which table a row lands in is read from its variant key (:mod:`.variants`) and the paper's
table layout (:mod:`.paper`), never parsed from its label nor from a method's options:

* Table 1, all methods: every variant that is neither one of Table 2's ablations nor a
  non-reference point of Table 3's sweep, and the proposed method as the paper runs it
  (DualReal: dual-aware training, StageBlender controller, n = 7 weight groups; a backbone on
  which n = 7 cannot run shows the run with the largest n, and says so);
* Table 2, ablations: each variant that is a published ablation, or one with more options
  set (``dualreal[controller=false,steps_scale=0.1]`` is the controller ablation of a
  shortened run), beside the reference;
* Table 3, the sweep (group cardinality): every other variant of the proposed method, at the
  value of the swept option its key carries (``dualreal[num_groups=2]`` is n = 2, whatever the
  backbone; ``dualreal`` and ``dualreal[steps_scale=0.1]`` are the paper's n = 7), when the
  run has more than one value.

Every row is printed under its variant key (:func:`.variants.row_name`), so a reader can tell
from the table which config produced it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .aggregate import Table
from .paper import Layout, row_order_key, shipped_layout
from .variants import Variant, method_variants, parse_variant_key, row_name


def _sortable(value: Any) -> tuple:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, json.dumps(value, sort_keys=True))


def _reference_rows(
    labels: Sequence[str], variants: Mapping[str, Variant], layout: Layout
) -> tuple[list[str], Any]:
    """The rows standing for the proposed method as the paper runs it, and their sweep value:
    the paper's value where the run has it, else the largest the run has."""
    values = {lb: layout.sweep_value(variants[lb]) for lb in labels}
    swept = sorted({v for v in values.values() if v is not None}, key=_sortable)
    if layout.sweep is None or not swept:
        return [lb for lb in labels if variants[lb].key == layout.proposed.key], None
    ref = layout.sweep.reference_value if layout.sweep.reference_value in swept else swept[-1]
    return [lb for lb in labels if values[lb] == ref], ref


def _ablation_rows(
    labels: Sequence[str], variants: Mapping[str, Variant], layout: Layout, exclude: set[str]
) -> list[tuple[str, str]]:
    """(label, shown name) of Table 2's ablations, in the paper's row order: the first
    published ablation each variant is (or extends with more options set)."""
    found: list[tuple[int, int, str, str]] = []
    for pos, lb in enumerate(labels):
        if lb in exclude:
            continue
        for i, (ablation, name) in enumerate(layout.ablations):
            if variants[lb].extends(ablation):
                found.append((i, pos, lb, f"{name}: {row_name(lb, variants[lb])}"))
                break
    return [(lb, shown) for _, _, lb, shown in sorted(found)]


def split_tables(
    records: Sequence[Mapping[str, Any]], layout: Layout | None = None
) -> dict[str, list[tuple[str, str]]]:
    """table id -> [(method label, shown name)] for Tables 1-3 (empty lists: not applicable)."""
    layout = layout or shipped_layout()
    variants = method_variants(records)
    labels = sorted(variants, key=row_order_key(records, layout))
    reference, _ = _reference_rows(labels, variants, layout)
    t2 = _ablation_rows(labels, variants, layout, set(reference))
    if t2:
        t2 += [(lb, f"{layout.full_label}: {row_name(lb, variants[lb])}") for lb in reference]
    swept = {lb: layout.sweep_value(variants[lb]) for lb in labels}
    swept = {lb: v for lb, v in swept.items() if v is not None}
    t3: list[tuple[str, str]] = []
    if layout.sweep is not None and len({json.dumps(v) for v in swept.values()}) > 1:
        t3 = [
            (lb, f"{layout.sweep.label(swept[lb])}: {row_name(lb, variants[lb])}")
            for lb in sorted(swept, key=lambda lb: (_sortable(swept[lb]), lb))
        ]
    ablations = {lb for lb, _ in t2}
    t1 = [
        (lb, row_name(lb, variants[lb]))
        for lb in labels
        if lb in reference or (lb not in swept and lb not in ablations)
    ]
    return {"table1": t1, "table2": t2, "table3": t3}


def method_notes(table: Table, layout: Layout) -> list[str]:
    """What the published file says a table with a row of a method must say (DreamVideo: the
    paper's ran on another backbone), once per method."""
    names = dict.fromkeys(parse_variant_key(table.variants[r]).name for r in table.rows)
    return [f"{name}: {layout.method_notes[name]}" for name in names if name in layout.method_notes]


def reference_note(records: Sequence[Mapping[str, Any]], layout: Layout) -> str | None:
    """Table 1's note when the run has the proposed method only with another sweep value."""
    variants = method_variants(records)
    labels = sorted(variants, key=row_order_key(records, layout))
    _, value = _reference_rows(labels, variants, layout)
    if layout.sweep is None or value is None or value == layout.sweep.reference_value:
        return None
    return layout.sweep.without_reference
