"""A plain table like common.render.table, fast enough for 10 000 loss records.

tabulate needs about a second for 10 000 rows; this formats the same
"simple" layout (header, dashes, two-space gaps) with plain string joins and
clips to the terminal width with common.render.fit_columns.
"""
from gdb_toolkit.common.render import _clip, fit_columns


def table(headers: list[str], rows: list[list], width: int | None = None) -> str:
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    widths = fit_columns(headers, cells, width)
    if widths:
        cells = [[_clip(v, widths[i]) for i, v in enumerate(r)] for r in cells]
        headers = [_clip(h, widths[i]) for i, h in enumerate(headers)]
    cols = len(headers)
    w = [max([len(headers[c])] + [len(r[c]) for r in cells]) for c in range(cols)]
    out = ["  ".join(headers[c].ljust(w[c]) for c in range(cols)).rstrip(),
           "  ".join("-" * w[c] for c in range(cols))]
    fmt = "  ".join(f"{{:<{w[c]}}}" for c in range(cols))
    out.extend(fmt.format(*r).rstrip() for r in cells)
    return "\n".join(out) + "\n"
