"""Legacy name of the fast table: now common.table.render_table (via render.table).

Kept so code not yet converted keeps working; new code uses common.table.
"""
from gdb_toolkit.common.render import table


def plain_table(headers: list[str], rows: list[list], width: int | None = None,
                title: str | None = None, sep: int = 2) -> str:
    return table(headers, rows, width=width, title=title)
