"""Legacy name of the fast table: now common.table.render_table (via render.table).

Kept so code not yet converted keeps working; new code uses common.table.
"""
from gdb_toolkit.common.render import table as _table


def table(headers: list[str], rows: list[list], width: int | None = None) -> str:
    return _table(headers, rows, width=width)
