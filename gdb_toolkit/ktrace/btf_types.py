"""Adapter from the kernel domain's BTF reader (gdb_toolkit.kernel.btf) to what
ktrace needs: function parameters, return types, and field-read chains."""
from gdb_toolkit.common.errors import ToolkitError


class BtfOracle:
    def __init__(self, btf):
        self.btf = btf

    def _proto(self, function: str):
        from gdb_toolkit.kernel import btf as kb

        fn = self.btf.find(function, "func")
        if fn is None:
            return None
        proto = self.btf.type(fn.ref)
        return proto if proto.kind == kb.FUNC_PROTO else None

    def func_params(self, function: str):
        """[(name, struct name when the parameter points to a struct)] or None."""
        from gdb_toolkit.kernel import btf as kb

        proto = self._proto(function)
        if proto is None:
            return None
        out = []
        for pname, ptype in proto.members:
            struct = None
            if ptype:
                t = self.btf.strip(ptype)
                if t.kind == kb.PTR:
                    target = self.btf.strip(t.ref)
                    if target.kind in (kb.STRUCT, kb.UNION, kb.FWD) and target.name:
                        struct = target.name
            out.append((pname, struct))
        return out

    def func_ret(self, function: str):
        """(size, signed) of the return type, or None (void/unknown)."""
        from gdb_toolkit.kernel import btf as kb

        proto = self._proto(function)
        if proto is None or not proto.ref:
            return None
        t = self.btf.strip(proto.ref)
        if t.kind == kb.PTR:
            return (8, False)
        if t.kind == kb.INT:
            return (t.size, bool(t.int_encoding & kb.INT_SIGNED))
        if t.kind in (kb.ENUM, kb.ENUM64):
            return (t.size, True)
        return None

    def field_reads(self, struct: str, path: str):
        """(offset, size) loads from a struct pointer to the field, and its signedness."""
        mp = self.btf.resolve(struct, path)
        if mp.bit_size:
            raise ToolkitError(f"{struct}.{path} is a bitfield", "read the containing word instead")
        size = mp.size or 0
        if mp.kind in ("struct", "union") or size > 8 or size == 0:
            raise ToolkitError(f"{struct}->{path} is {mp.type_name} ({size} bytes); ktrace reads "
                               "scalars and pointers (up to 8 bytes)", "name a member inside it")
        pointer = self.btf.pointer_size
        reads = [(h, pointer) for h in mp.hops[:-1]] + [(mp.hops[-1], size)]
        return reads, mp.signed


def load_oracle(path: str = "/sys/kernel/btf/vmlinux") -> BtfOracle:
    import os

    if not os.path.exists(path):
        raise ToolkitError(f"no {path}", "boot a kernel with CONFIG_DEBUG_INFO_BTF=y")
    from gdb_toolkit.kernel.btf import Btf

    return BtfOracle(Btf.load(path))
