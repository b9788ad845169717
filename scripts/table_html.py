"""Snakemake rule ``table_html``: results/table.md -> results/table.html for the report (the same text)."""

from pathlib import Path

from ltbench.io import write_text
from ltbench.logs import redirect_to_log
from ltbench.reporting.table_text import table_html


def render_table(md_path: str, html_path: str) -> None:
    """Render the markdown results table as a standalone HTML page."""
    write_text(html_path, table_html(Path(md_path).read_text(), "Results"))
    print(f"{md_path} -> {html_path}")


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with redirect_to_log(sm.log[0]):
        render_table(sm.input.md, sm.output.html)
