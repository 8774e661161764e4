"""Walk the kernel's ``kprobe_table[64]`` through kcore with struct layouts from BTF.

Every registered kprobe (or the aggregate standing for several at one address) hangs
off one of 64 hlist heads.  An aggregate (``pre_handler == aggr_pre_handler``) keeps
its members on ``p->list``; with CONFIG_OPTPROBES it is an ``optimized_kprobe``
whose ``optinsn`` holds the detour buffer and the bytes the jump overwrote.  The walk
is bounded (a cycle or a freed node seen during a concurrent (un)registration ends a
chain with a note, never a hang).  Pure apart from the ``memory.read(addr, n)`` it is
given (a Kcore, or any object with ``read``).
"""
import _struct as struct   # what struct.py re-exports (see plt/slots.py)

from gdb_toolkit.common.errors import ToolkitError
from gdb_toolkit.common.location import kernel_location_of
from gdb_toolkit.common.record import field, record
from gdb_toolkit.kernel.kprobe_text import flags_from_bits

KPROBE_TABLE_SIZE = 64
MAX_PROBES = 100000
MAX_CHILDREN = 4096


def _off(btf, type_name: str, path: str) -> int | None:
    try:
        return btf.resolve(type_name, path).offset
    except ToolkitError:
        return None


def _size(btf, type_name: str, path: str) -> int | None:
    try:
        return btf.resolve(type_name, path).size
    except ToolkitError:
        return None


def _type_size(btf, c_type: str) -> int | None:
    try:
        return btf.type_size(c_type)
    except ToolkitError:
        return None


@record
class KprobeLayout:
    """Offsets of the members we read, from BTF (None where this kernel lacks them)."""
    size: int
    hlist_next: int
    list_next: int
    nmissed: int | None
    addr: int
    symbol_name: int | None
    offset: int | None
    pre_handler: int
    post_handler: int | None
    opcode: int | None
    opcode_size: int
    ainsn_insn: int | None          # x86: ainsn.insn; arm64: ainsn.api.insn
    ainsn_size: int | None          # x86 only: length of the copied instruction
    flags: int
    # optimized_kprobe
    opt_size: int | None = None
    opt_copied: int | None = None
    opt_copied_len: int = 4
    opt_insn: int | None = None
    opt_len: int | None = None
    # kretprobe / trace_kprobe containers
    kretprobe_kp: int | None = None
    kretprobe_handler: int | None = None
    kretprobe_entry_handler: int | None = None
    kretprobe_maxactive: int | None = None
    kretprobe_nmissed: int | None = None
    tk_rp: int | None = None
    tk_size: int | None = None        # sizeof(struct trace_kprobe) (without tp.args[])
    tk_devent_list: int | None = None # trace_kprobe.devent.list: linked = a tracefs (dyn_event)
    tk_nhit: int | None = None        # trace_kprobe.nhit (unsigned long __percpu *)
    tk_symbol: int | None = None
    tk_event: int | None = None       # trace_kprobe.tp.event (struct trace_probe_event *)
    tpe_call: int | None = None       # offset of trace_probe_event.call
    tpe_class: int | None = None      # offset of trace_probe_event.class (embedded)
    call_name: int | None = None      # trace_event_call.name
    call_class: int | None = None
    class_system: int | None = None   # trace_event_class.system
    call_prog_array: int | None = None
    prog_array_items: int | None = None
    prog_array_item_size: int | None = None
    bpf_func: int | None = None
    bpf_aux: int | None = None
    aux_name: int | None = None
    aux_id: int | None = None

    @classmethod
    def from_btf(cls, btf) -> "KprobeLayout":
        if btf.find("kprobe") is None or not btf.find("kprobe").members:
            raise ToolkitError(f"{btf.path} has no struct kprobe",
                               "the kernel was built without CONFIG_KPROBES")
        k = "kprobe"
        ainsn = _off(btf, k, "ainsn.insn")
        if ainsn is None:
            ainsn = _off(btf, k, "ainsn.api.insn")
        lay = cls(
            size=btf.type_size("struct kprobe"),
            hlist_next=_off(btf, k, "hlist.next"),
            list_next=_off(btf, k, "list.next"),
            nmissed=_off(btf, k, "nmissed"),
            addr=_off(btf, k, "addr"),
            symbol_name=_off(btf, k, "symbol_name"),
            offset=_off(btf, k, "offset"),
            pre_handler=_off(btf, k, "pre_handler"),
            post_handler=_off(btf, k, "post_handler"),
            opcode=_off(btf, k, "opcode"),
            opcode_size=_size(btf, k, "opcode") or 1,
            ainsn_insn=ainsn,
            ainsn_size=_off(btf, k, "ainsn.size"),
            flags=_off(btf, k, "flags"),
        )
        if btf.find("optimized_kprobe") is not None:
            lay.opt_size = btf.type_size("struct optimized_kprobe")
            lay.opt_copied = _off(btf, "optimized_kprobe", "optinsn.copied_insn")
            lay.opt_copied_len = _size(btf, "optimized_kprobe", "optinsn.copied_insn") or 4
            lay.opt_insn = _off(btf, "optimized_kprobe", "optinsn.insn")
            lay.opt_len = _off(btf, "optimized_kprobe", "optinsn.size")
        if btf.find("kretprobe") is not None:
            lay.kretprobe_kp = _off(btf, "kretprobe", "kp")
            lay.kretprobe_handler = _off(btf, "kretprobe", "handler")
            lay.kretprobe_entry_handler = _off(btf, "kretprobe", "entry_handler")
            lay.kretprobe_maxactive = _off(btf, "kretprobe", "maxactive")
            lay.kretprobe_nmissed = _off(btf, "kretprobe", "nmissed")
        if btf.find("trace_kprobe") is not None:
            lay.tk_rp = _off(btf, "trace_kprobe", "rp")
            lay.tk_size = _type_size(btf, "struct trace_kprobe")
            lay.tk_devent_list = _off(btf, "trace_kprobe", "devent.list")
            lay.tk_nhit = _off(btf, "trace_kprobe", "nhit")
            lay.tk_symbol = _off(btf, "trace_kprobe", "symbol")
            lay.tk_event = _off(btf, "trace_kprobe", "tp.event")
            lay.tpe_call = _off(btf, "trace_probe_event", "call")
            lay.tpe_class = _off(btf, "trace_probe_event", "class")
            lay.call_name = _off(btf, "trace_event_call", "name")
            lay.call_class = _off(btf, "trace_event_call", "class")
            lay.class_system = _off(btf, "trace_event_class", "system")
            lay.call_prog_array = _off(btf, "trace_event_call", "prog_array")
            lay.prog_array_items = _off(btf, "bpf_prog_array", "items")
            lay.prog_array_item_size = _type_size(btf, "struct bpf_prog_array_item")
            lay.bpf_func = _off(btf, "bpf_prog", "bpf_func")
            lay.bpf_aux = _off(btf, "bpf_prog", "aux")
            lay.aux_name = _off(btf, "bpf_prog_aux", "name")
            lay.aux_id = _off(btf, "bpf_prog_aux", "id")
        return lay


@record
class KprobeStruct:
    """One struct kprobe read from kernel memory."""
    struct_addr: int
    addr: int
    symbol_name: str | None
    offset: int
    pre_handler: int
    post_handler: int
    opcode: bytes
    ainsn_insn: int | None
    ainsn_size: int | None
    flags: int
    nmissed: int | None
    pre_handler_name: str | None = None
    post_handler_name: str | None = None
    aggregate: bool = False
    children: list = field(default_factory=list)
    # optimized_kprobe (aggregates only)
    copied_insn: bytes | None = None
    detour: int | None = None
    detour_len: int | None = None
    # the container: kretprobe / trace_kprobe, when the handlers say so
    kretprobe_handler: int | None = None
    kretprobe_handler_name: str | None = None
    maxactive: int | None = None
    # the owning trace_kprobe (kprobe_dispatcher / kretprobe_dispatcher), read from memory
    tk_addr: int | None = None
    tk_symbol: str | None = None      # its target as written: "ext4:ext4_file_open", "vfs_read"
    event: str | None = None          # group/event of the owning trace_kprobe
    event_dynamic: bool | None = None # True: on the dyn_event list (tracefs kprobe_events);
                                      # False: a perf/BPF probe's local trace_kprobe
    nhit: int | None = None           # trace_kprobe->nhit summed over the possible CPUs
    bpf_progs: list = field(default_factory=list)

    @property
    def flag_names(self) -> list[str]:
        return flags_from_bits(self.flags)


@record
class TableWalk:
    table: int
    probes: list            # KprobeStruct (top-level; aggregates carry children)
    notes: list             # anything odd seen while walking (races, bad pointers)

    def all_probes(self):
        for p in self.probes:
            yield p
            yield from p.children


def _canonical(p: int) -> bool:
    """A plausible kernel pointer (upper half, 4- or 5-level paging, x86_64 or arm64)."""
    return 0xFF00000000000000 <= p < 0xFFFFFFFFFFFFF000


class TableWalker:
    """Reads struct kprobes; *symbols* supplies ``address(name)`` and ``format(addr)``;
    *percpu* the per-CPU offsets of the possible CPUs (``__per_cpu_offset[cpu]``) for the
    trace_kprobe hit counters (None: hit counts are not read)."""

    def __init__(self, memory, layout: KprobeLayout, symbols=None, percpu: list[int] | None = None):
        self.mem = memory
        self.lay = layout
        self.symbols = symbols
        self.percpu = percpu
        self._special = {}
        self._strings: dict[int, str | None] = {}
        self._batch_nhit = False        # walk(): counters read per CPU in one span
        if symbols is not None:
            for name in ("aggr_pre_handler", "pre_handler_kretprobe", "kprobe_dispatcher",
                         "kretprobe_dispatcher"):
                try:
                    a = symbols.address(name)
                except ToolkitError:
                    a = None
                if a:
                    self._special[a] = name

    def _name(self, addr: int) -> str | None:
        if not addr:
            return None
        if addr in self._special:
            return self._special[addr]
        return self.symbols.describe(addr) if self.symbols is not None else None

    def _u64(self, buf: bytes, off: int | None) -> int | None:
        if off is None or off < 0 or off + 8 > len(buf):
            return None
        return struct.unpack_from("<Q", buf, off)[0]

    def _u32(self, buf: bytes, off: int | None) -> int | None:
        if off is None or off < 0 or off + 4 > len(buf):
            return None
        return struct.unpack_from("<I", buf, off)[0]

    def _string(self, ptr: int | None) -> str | None:
        """A C string in kernel memory (cached per pointer: groups and names repeat)."""
        if not ptr or not _canonical(ptr):
            return None
        if ptr not in self._strings:
            try:
                self._strings[ptr] = self.mem.read_cstring(ptr, 128)
            except (ToolkitError, AttributeError):
                self._strings[ptr] = None
        return self._strings[ptr]

    def read_kprobe(self, addr: int, aggregate_hint: bool = False, detail: bool = True) -> KprobeStruct:
        """One struct kprobe at *addr* with its container (kretprobe handler, the owning
        trace_kprobe's event, hit count and BPF programs); *detail* also reads symbol_name."""
        lay = self.lay
        # a probe made by tracefs or perf sits inside a trace_kprobe (rp.kp): read the whole
        # container at once, speculatively (the bytes before a kmalloc'd object are mapped)
        before = (lay.tk_rp or 0) + (lay.kretprobe_kp or 0)
        block, at = None, 0
        if lay.tk_size and before and lay.tk_size >= before + lay.size:
            try:
                block, at = self.mem.read(addr - before, max(lay.tk_size, before + (lay.opt_size or 0))), \
                    before
            except ToolkitError:
                block = None
        if block is None:
            block, at = self.mem.read(addr, max(lay.size, lay.opt_size or 0)), 0
        buf = block[at:]
        pre = self._u64(buf, lay.pre_handler) or 0
        aggr = self._special.get(pre) == "aggr_pre_handler" or aggregate_hint
        op = bytes(buf[lay.opcode:lay.opcode + lay.opcode_size]) if lay.opcode is not None else b""
        flags = self._u32(buf, lay.flags) or 0
        kp = KprobeStruct(
            struct_addr=addr,
            addr=self._u64(buf, lay.addr) or 0,
            symbol_name=None,
            offset=self._u32(buf, lay.offset) or 0,
            pre_handler=pre,
            post_handler=self._u64(buf, lay.post_handler) or 0,
            opcode=op,
            ainsn_insn=self._u64(buf, lay.ainsn_insn),
            ainsn_size=buf[lay.ainsn_size] if lay.ainsn_size is not None and lay.ainsn_size < len(buf) else None,
            flags=flags,
            nmissed=self._u64(buf, lay.nmissed),
            aggregate=aggr,
        )
        kp.pre_handler_name = self._name(kp.pre_handler)
        kp.post_handler_name = self._name(kp.post_handler)
        if aggr and lay.opt_copied is not None and len(buf) >= (lay.opt_size or 0):
            kp.copied_insn = bytes(buf[lay.opt_copied:lay.opt_copied + lay.opt_copied_len])
            kp.detour = self._u64(buf, lay.opt_insn)
            kp.detour_len = self._u64(buf, lay.opt_len)
        kp._symbol_ptr = self._u64(buf, lay.symbol_name)
        kp._hlist_next = self._u64(buf, lay.hlist_next)
        kp._list_next = self._u64(buf, lay.list_next)
        if not aggr:
            self._container(kp, block if at else None)
        if detail:
            self.enrich(kp)
        return kp

    def enrich(self, kp: KprobeStruct) -> KprobeStruct:
        """Read what the cheap pass skipped: the symbol_name string."""
        if getattr(kp, "_enriched", False):
            return kp
        kp._enriched = True
        kp.symbol_name = self._string(getattr(kp, "_symbol_ptr", None))
        return kp

    def _container(self, kp: KprobeStruct, tk_block: bytes | None = None):
        """The kretprobe / trace_kprobe around a kprobe whose handler identifies them.

        A trace_kprobe embeds ``rp`` (struct kretprobe) whose ``kp`` is the struct kprobe:
        kprobe_dispatcher / kretprobe_dispatcher say the container is one.  Read as one block
        (the kretprobe and the trace_kprobe header together)."""
        lay = self.lay
        role = self._special.get(kp.pre_handler)
        if lay.kretprobe_kp is None or role not in ("kprobe_dispatcher", "pre_handler_kretprobe"):
            return
        rp = kp.struct_addr - lay.kretprobe_kp
        tk_ok = lay.tk_rp is not None and lay.tk_size
        tk = rp - lay.tk_rp if tk_ok else None
        blk, base = None, None
        if tk_ok and tk_block is not None and len(tk_block) >= lay.tk_size:
            blk, base = tk_block, tk
        elif tk_ok:
            try:
                blk, base = self.mem.read(tk, lay.tk_size), tk
            except ToolkitError:
                blk = None
        if blk is None:
            want = max(o or 0 for o in (lay.kretprobe_handler, lay.kretprobe_maxactive)) + 8
            try:
                blk, base = self.mem.read(rp, want), rp
            except ToolkitError:
                return
        at = rp - base                              # the kretprobe's offset within blk
        if role == "pre_handler_kretprobe":
            kp.kretprobe_handler = self._u64(blk, None if lay.kretprobe_handler is None
                                             else at + lay.kretprobe_handler)
            kp.kretprobe_handler_name = self._name(kp.kretprobe_handler or 0)
            ma = self._u32(blk, None if lay.kretprobe_maxactive is None else at + lay.kretprobe_maxactive)
            kp.maxactive = ma if ma is None or ma < 1 << 31 else ma - (1 << 32)
        is_tk = role == "kprobe_dispatcher" or kp.kretprobe_handler_name == "kretprobe_dispatcher"
        if not is_tk or base != tk:
            return
        kp.tk_addr = tk
        if lay.tk_devent_list is not None:
            nxt = self._u64(blk, lay.tk_devent_list)
            if nxt is not None:
                kp.event_dynamic = nxt != tk + lay.tk_devent_list   # INIT_LIST_HEAD: local
        kp.tk_symbol = self._string(self._u64(blk, lay.tk_symbol))
        kp._nhit_ptr = self._u64(blk, lay.tk_nhit)
        if not self._batch_nhit:
            kp.nhit = self._nhit(kp._nhit_ptr)
        try:
            self._event(kp, self._u64(blk, lay.tk_event) or 0)
        except ToolkitError:
            return

    def _nhit_all(self, kps: list) -> None:
        """Every probe's hit counter at once: per-cpu allocations of one kind sit close
        together in a per-cpu chunk, so each CPU's counters are one read (a few KiB) instead of
        one read per probe and CPU."""
        ptrs = [kp._nhit_ptr for kp in kps if getattr(kp, "_nhit_ptr", None)]
        if not ptrs or self.percpu is None:
            return
        lo, hi = min(ptrs), max(ptrs) + 8
        if hi - lo > 1 << 20:                   # scattered: one by one
            for kp in kps:
                kp.nhit = self._nhit(getattr(kp, "_nhit_ptr", None))
            return
        totals = dict.fromkeys(ptrs, 0)
        try:
            for off in self.percpu:
                blk = self.mem.read((lo + off) & ((1 << 64) - 1), hi - lo)
                for p in totals:
                    totals[p] += struct.unpack_from("<Q", blk, p - lo)[0]
        except ToolkitError:
            for kp in kps:
                kp.nhit = self._nhit(getattr(kp, "_nhit_ptr", None))
            return
        for kp in kps:
            p = getattr(kp, "_nhit_ptr", None)
            if p:
                kp.nhit = totals[p] & ((1 << 64) - 1)

    def _nhit(self, ptr: int | None) -> int | None:
        """``trace_kprobe_nhit()``: the per-CPU counter summed over the possible CPUs."""
        if not ptr or self.percpu is None:
            return None
        total = 0
        try:
            for off in self.percpu:
                total += self.mem.read_u64((ptr + off) & ((1 << 64) - 1))
        except ToolkitError:
            return None
        return total & ((1 << 64) - 1)

    def _event(self, kp: KprobeStruct, tpe: int):
        """tp.event -> call: the event name, its group (class->system), its BPF programs."""
        lay = self.lay
        if not tpe or not _canonical(tpe) or lay.tpe_call is None or lay.call_name is None:
            return
        call_off = [o for o in (lay.call_name, lay.call_class, lay.call_prog_array) if o is not None]
        span = lay.tpe_call + max(call_off) + 8
        if lay.tpe_class is not None and lay.class_system is not None:
            span = max(span, lay.tpe_class + lay.class_system + 8)
        blk = self.mem.read(tpe, span)
        call = tpe + lay.tpe_call
        name = self._string(self._u64(blk, lay.tpe_call + lay.call_name))
        system = None
        if lay.call_class is not None and lay.class_system is not None:
            cls = self._u64(blk, lay.tpe_call + lay.call_class)
            if cls and lay.tpe_class is not None and cls == tpe + lay.tpe_class:
                system = self._string(self._u64(blk, lay.tpe_class + lay.class_system))
            elif cls and _canonical(cls):
                system = self._string(self.mem.read_u64(cls + lay.class_system))
        if name:
            kp.event = f"{system}/{name}" if system else name
        arr = self._u64(blk, None if lay.call_prog_array is None else lay.tpe_call + lay.call_prog_array)
        if arr:
            self._bpf(kp, call, arr)

    def _bpf(self, kp: KprobeStruct, call: int, arr: int | None = None):
        lay = self.lay
        if None in (lay.call_prog_array, lay.prog_array_items, lay.bpf_func):
            return
        if arr is None:
            arr = self.mem.read_u64(call + lay.call_prog_array)
        if not arr or not _canonical(arr):
            return
        step = lay.prog_array_item_size or 16
        for i in range(64):
            prog = self.mem.read_u64(arr + lay.prog_array_items + i * step)
            if not prog or not _canonical(prog):
                break
            func = self.mem.read_u64(prog + lay.bpf_func)
            name, pid = None, None
            if lay.bpf_aux is not None:
                aux = self.mem.read_u64(prog + lay.bpf_aux)
                if aux and _canonical(aux) and lay.aux_name is not None:
                    raw = self.mem.read(aux + lay.aux_name, 16)
                    name = raw.split(b"\0")[0].decode("utf-8", "replace") or None
                if aux and _canonical(aux) and lay.aux_id is not None:
                    pid = self.mem.read_u32(aux + lay.aux_id)
            kp.bpf_progs.append({"prog_address": prog, "bpf_func_address": func, "name": name,
                                 "id": pid, "bpf_func_location": kernel_location_of(func, self._name(func))})

    def children(self, ap: KprobeStruct, notes: list, detail: bool = True) -> list[KprobeStruct]:
        head = ap.struct_addr + self.lay.list_next
        out, seen = [], {head}
        node = self.mem.read_u64(head)
        while node not in seen:
            if len(out) >= MAX_CHILDREN or not _canonical(node):
                notes.append(f"aggregate kprobe at 0x{ap.struct_addr:x}: child list broken at "
                             f"0x{node:x} (changed while reading?)")
                break
            seen.add(node)
            try:
                kp = self.read_kprobe(node - self.lay.list_next, detail=detail)
                out.append(kp)
                node = kp._list_next if kp._list_next is not None else self.mem.read_u64(node)
            except ToolkitError as exc:
                notes.append(f"aggregate kprobe at 0x{ap.struct_addr:x}: {exc.cause}")
                break
        return out

    def walk(self, table: int, limit: int = MAX_PROBES, detail: bool = False) -> TableWalk:
        self._batch_nhit = True
        try:
            walk = self._walk(table, limit, detail)
        finally:
            self._batch_nhit = False
        self._nhit_all(list(walk.all_probes()))
        return walk

    def _walk(self, table: int, limit: int, detail: bool) -> TableWalk:
        notes: list[str] = []
        probes: list[KprobeStruct] = []
        heads = struct.unpack("<64Q", self.mem.read(table, 8 * KPROBE_TABLE_SIZE))
        seen: set[int] = set()
        for bucket, node in enumerate(heads):
            while node:
                if node in seen:
                    notes.append(f"kprobe_table[{bucket}]: node 0x{node:x} seen twice "
                                 "(the table changed while reading); chain cut")
                    break
                if len(probes) >= limit:
                    notes.append(f"stopped after {limit} probes")
                    return TableWalk(table, probes, notes)
                if not _canonical(node):
                    notes.append(f"kprobe_table[{bucket}]: bad pointer 0x{node:x}; chain cut")
                    break
                seen.add(node)
                try:
                    kp = self.read_kprobe(node - self.lay.hlist_next, detail=detail)
                except ToolkitError as exc:
                    notes.append(f"kprobe_table[{bucket}]: {exc.cause}; chain cut")
                    break
                if kp.aggregate:
                    kp.children = self.children(kp, notes, detail)
                probes.append(kp)
                node = kp._hlist_next if kp._hlist_next is not None else self.mem.read_u64(node)
        return TableWalk(table, probes, notes)
