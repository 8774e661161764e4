"""Adapter from the kernel domain's BTF reader (gdb_toolkit.kernel.btf) to what
ktrace needs: function parameters, return types, and field-read chains."""
from gdb_toolkit.common.errors import ToolkitError


class BtfOracle:
    def __init__(self, btf):
        self.btf = btf

    def func_params(self, function: str):
        raise NotImplementedError

    def func_ret(self, function: str):
        raise NotImplementedError

    def field_reads(self, struct: str, path: str):
        raise NotImplementedError


def load_oracle():
    try:
        from gdb_toolkit.kernel.btf import Btf
    except ImportError as exc:
        raise ToolkitError(f"the kernel BTF reader is not available ({exc})",
                           "merge the kernel domain") from None
    return BtfOracle(Btf.load())
