"""A table as a LaTeX ``table`` with a booktabs ``tabular`` (footnotes as comments)."""

from __future__ import annotations

from ..aggregate import Table
from .common import Style, body, caption, footer, head, n_lead

STYLE = Style(best="\\textbf{{{}}}", second="\\underline{{{}}}", dagger="$^\\dagger$")

#: characters LaTeX reads as markup, and the symbols the tables print, as LaTeX
LATEX_CHARS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "_": r"\_",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\^{}",
    "[": "{[}",
    "]": "{]}",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "†": r"$^\dagger$",
    "↳": r"$\hookrightarrow$",
    "Δ": r"$\Delta$",
    "−": "-",
    "—": "---",
    "·": r"$\cdot$",
}


def latex_escape(text: str) -> str:
    return "".join(LATEX_CHARS.get(ch, ch) for ch in text)


def render_latex(table: Table) -> str:
    cols = head(table)
    lead = n_lead(table)
    spec = "l" * lead + "r" * (len(cols) - lead)
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{latex_escape('. '.join(filter(None, [table.title, caption(table)])))}}}",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(latex_escape(h) for h in cols) + " \\\\",
        "\\midrule",
    ]
    for cells, _ in body(table, STYLE):
        names = [latex_escape(c) for c in cells[:lead]]
        # a value cell holds LaTeX only where this renderer's style marked it
        values = [c if "\\" in c else latex_escape(c) for c in cells[lead:]]
        lines.append(" & ".join(names + values) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    lines += [f"% {n}" for n in footer(table)]
    return "\n".join(lines) + "\n"
