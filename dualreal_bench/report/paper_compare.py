"""The published numbers beside a table's measured rows (``--compare-paper``).

Published numbers attach to rows by equal variant keys: ``lora[fusion=delta_sum]`` or a
shortened ``dualreal[steps_scale=0.1]`` is never paired with the paper's row; a published row
the run has no measured row of (MotionBooth before it has run) is shown with empty measured
cells. The notes say where the numbers come from and when Δ is not a reproduction check
(another suite, the tiny profile).
"""

from __future__ import annotations

from .aggregate import Cell, Table
from .columns import column_fields
from .paper import Layout, PaperResults
from .table_split import method_notes
from .variants import parse_variant_key


def attach_paper(
    table: Table,
    paper: PaperResults,
    suite: str | None,
    profile: str | None,
    layout: Layout | None = None,
) -> None:
    """Put the published values beside ``table``'s rows (by variant key), add the published
    rows the run has no measured row of (empty measured cells), and say what they are."""
    table.paper = {}
    if not paper.transcribed:
        table.notes.append(
            f"published numbers: {paper.status} ({paper.path.name}); no comparison made"
        )
        return
    spec = paper.tables.get(table.id) or {}
    for row in table.rows:
        found = paper.values(table.id, table.variants.get(row, row))
        if found is not None:
            table.paper_names[row], table.paper[row] = found
    known = set(table.notes)
    _add_unmeasured(table, paper, layout or paper.layout)
    table.notes += [n for n in method_notes(table, layout or paper.layout) if n not in known]
    table.paper_dataset_dd = paper.dataset_dynamic_degree(table.id)
    where = f"{paper.source.get('citation', 'the paper')}, {spec.get('source_table', table.id)}"
    table.notes.append(f"paper: published values ({where}); Δ = measured − paper")
    if spec.get("caption"):
        table.notes.append(f"paper's caption: {spec['caption']}")
    for row in table.rows:
        published = paper.row(table.id, table.variants.get(row, row)) or {}
        for field, note in (published.get("notes") or {}).items():
            table.notes.append(f"paper, {published.get('paper_name')}, {field}: {note}")
    if spec.get("suite") and suite and spec["suite"] != suite:
        table.notes.append(
            f"measured on suite {suite!r}, published on suite {spec['suite']!r}: "
            "different cases, so Δ is not a reproduction check"
        )
    if profile == "tiny":
        table.notes.append(
            "tiny profile: Δ against the paper is meaningless (random-initialised models)"
        )
    missing = [table.label(r) for r in table.rows if r not in table.paper]
    if missing:
        table.notes.append(f"no published row of the same variant for: {', '.join(missing)}")
    if table.unmeasured:
        names = [table.label(r) for r in table.rows if r in table.unmeasured]
        table.notes.append(
            f"published rows not run here (empty measured cells): {', '.join(names)}"
        )


def _add_unmeasured(table: Table, paper: PaperResults, layout: Layout) -> None:
    """A row for each published variant of the table that no measured row is: empty measured
    cells beside the published values. Table 1 keeps the paper's row order."""
    have = set(table.variants.values())
    fields = [*column_fields(table.columns), *table.extra_fields]
    for key in paper.published_variants(table.id):
        if key in have:
            continue
        row = f"paper:{key}"
        table.rows.append(row)
        table.unmeasured.add(row)
        table.display[row] = key
        table.methods[row] = None
        table.variants[row] = key
        table.expected_rows[row] = 0
        for f in fields:
            table.cells[(row, f)] = Cell(None, 0, 0, False)
        table.paper_names[row], table.paper[row] = paper.values(table.id, key)
    if table.id == "table1" and table.unmeasured:
        position = {r: i for i, r in enumerate(table.rows)}
        table.rows.sort(
            key=lambda r: (
                layout.order_key(
                    table.methods.get(r) or table.variants[r],
                    parse_variant_key(table.variants[r]),
                ),
                position[r],
            )
        )
