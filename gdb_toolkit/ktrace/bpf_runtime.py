"""Load, attach and read ktrace's assembled BPF programs with plain system calls (worker only).

bpf(2) creates the maps and loads the programs (the verifier's log comes back on refusal);
perf_event_open(2) attaches them -- kprobes and kretprobes through the kprobe PMU (the kernel
removes them when the fd closes: a SIGKILLed worker leaves nothing behind), tracepoints by id --
and opens one ``PERF_COUNT_SW_BPF_OUTPUT`` ring per CPU for the records.  Everything is closed
by ``Loaded.close()``.  Nothing here needs bcc, clang or kernel headers.
"""
import ctypes
import errno
import mmap
import os
import platform
import select
import struct

from gdb_toolkit.ktrace import bpf_insn

_SYSCALLS = {"x86_64": (321, 298), "aarch64": (280, 241), "arm64": (280, 241)}   # bpf, perf_event_open
BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_PROG_LOAD = 0, 1, 2, 5
PERF_TYPE_SOFTWARE, PERF_TYPE_TRACEPOINT = 1, 2
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_SAMPLE_RAW = 1 << 10
PERF_FLAG_FD_CLOEXEC = 8
PERF_EVENT_IOC_ENABLE, PERF_EVENT_IOC_DISABLE, PERF_EVENT_IOC_SET_BPF = 0x2400, 0x2401, 0x40042408
PERF_RECORD_LOST, PERF_RECORD_SAMPLE = 2, 9
ATTR_SIZE = 112                          # PERF_ATTR_SIZE_VER5
KPROBE_PMU = "/sys/bus/event_source/devices/kprobe"
LOG_SIZE = 1 << 20

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class BpfError(Exception):
    """A system call failed; ``stage`` says which step ('load', 'attach', 'map', 'ring')."""

    def __init__(self, stage: str, message: str, err: int = 0, log: str = ""):
        super().__init__(message)
        self.stage, self.errno, self.log = stage, err, log


def _numbers():
    nums = _SYSCALLS.get(platform.machine())
    if nums is None:
        raise BpfError("load", f"no bpf(2) syscall number known for {platform.machine()}")
    return nums


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    ret = _libc.syscall(_numbers()[0], cmd, ctypes.byref(attr), len(attr))
    if ret < 0:
        return -ctypes.get_errno()
    return ret


def _perf_event_open(attr: bytes, pid: int, cpu: int) -> int:
    buf = ctypes.create_string_buffer(attr, len(attr))
    ret = _libc.syscall(_numbers()[1], ctypes.byref(buf), pid, cpu, -1, PERF_FLAG_FD_CLOEXEC)
    if ret < 0:
        return -ctypes.get_errno()
    return ret


def _ioctl(fd: int, req: int, arg: int) -> int:
    if _libc.ioctl(fd, ctypes.c_ulong(req), ctypes.c_ulong(arg)) < 0:
        return -ctypes.get_errno()
    return 0


def _strerror(err: int) -> str:
    return f"{errno.errorcode.get(err, err)}: {os.strerror(err)}"


def create_map(name: str, mtype: int, key_size: int, value_size: int, max_entries: int) -> int:
    attr = ctypes.create_string_buffer(48)
    struct.pack_into("<IIIIIII", attr, 0, mtype, key_size, value_size, max_entries, 0, 0, 0)
    attr[28:28 + min(15, len(name))] = name.encode()[:15]
    fd = _bpf(BPF_MAP_CREATE, attr)
    if fd < 0:
        raise BpfError("map", f"cannot create BPF map {name} ({_strerror(-fd)})", -fd)
    return fd


def map_update(fd: int, key: bytes, value: bytes) -> None:
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value, len(value))
    attr = ctypes.create_string_buffer(32)
    struct.pack_into("<IIQQQ", attr, 0, fd, 0, ctypes.addressof(k), ctypes.addressof(v), 0)
    ret = _bpf(BPF_MAP_UPDATE_ELEM, attr)
    if ret < 0:
        raise BpfError("map", f"cannot update BPF map ({_strerror(-ret)})", -ret)


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value_size)
    attr = ctypes.create_string_buffer(32)
    struct.pack_into("<IIQQQ", attr, 0, fd, 0, ctypes.addressof(k), ctypes.addressof(v), 0)
    return None if _bpf(BPF_MAP_LOOKUP_ELEM, attr) < 0 else v.raw


def kernel_version_code(release: str | None = None) -> int:
    """LINUX_VERSION_CODE of the running kernel (kprobe programs needed it before 5.0)."""
    from gdb_toolkit.ktrace.kversion import kernel_version_code as code

    return code(release or platform.release())


def load_program(name: str, ptype: int, code: bytes, license: str = "GPL") -> int:
    """BPF_PROG_LOAD; on refusal the verifier's log is in the BpfError."""
    insns = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(license.encode())
    for level in (0, 1):                 # retry with the log only when it is needed
        log = ctypes.create_string_buffer(LOG_SIZE if level else 1)
        attr = ctypes.create_string_buffer(72)
        struct.pack_into("<IIQQIIQII", attr, 0, ptype, len(code) // 8, ctypes.addressof(insns),
                         ctypes.addressof(lic), level, LOG_SIZE if level else 0,
                         ctypes.addressof(log) if level else 0, kernel_version_code(), 0)
        attr[48:48 + min(15, len(name))] = name.encode()[:15]
        fd = _bpf(BPF_PROG_LOAD, attr)
        if fd >= 0:
            return fd
        err = -fd
        if err not in (errno.EACCES, errno.EINVAL) or level:
            text = log.value.decode(errors="replace").strip() if level else ""
            raise BpfError("load", f"the kernel refused BPF program {name} ({_strerror(err)})", err,
                           text)
    raise AssertionError("unreachable")


def _attr(ptype: int, config: int = 0, sample_type: int = 0, wakeup: int = 0, config1: int = 0,
          config2: int = 0, period: int = 1) -> bytes:
    buf = bytearray(ATTR_SIZE)
    struct.pack_into("<IIQQQQQI", buf, 0, ptype, ATTR_SIZE, config, period, sample_type, 0, 0, wakeup)
    struct.pack_into("<QQ", buf, 56, config1, config2)
    return bytes(buf)


def _retprobe_bit() -> int:
    try:
        with open(os.path.join(KPROBE_PMU, "format", "retprobe")) as f:
            return int(f.read().strip().split(":")[1])
    except (OSError, ValueError, IndexError):
        return 0


def has_kprobe_pmu() -> bool:
    return os.path.exists(os.path.join(KPROBE_PMU, "type"))


def attach_kprobe(prog_fd: int, function: str, ret: bool) -> int:
    """A kprobe (or kretprobe) on *function* through the kprobe PMU, running *prog_fd*."""
    try:
        with open(os.path.join(KPROBE_PMU, "type")) as f:
            pmu = int(f.read())
    except (OSError, ValueError):
        raise BpfError("attach", "no kprobe PMU (/sys/bus/event_source/devices/kprobe)") from None
    name = ctypes.create_string_buffer(function.encode())
    config = (1 << _retprobe_bit()) if ret else 0
    attr = _attr(pmu, config, config1=ctypes.addressof(name), config2=0)
    fd = _perf_event_open(attr, -1, 0)
    if fd < 0:
        why = {errno.ENOENT: "no such function", errno.EINVAL: "not probeable (blacklisted, inlined "
               "or not a function start)", errno.EBUSY: "busy"}.get(-fd, "")
        raise BpfError("attach", f"cannot attach a {'kretprobe' if ret else 'kprobe'} to {function}: "
                                 f"{why + ' ' if why else ''}({_strerror(-fd)})", -fd)
    return _enable(fd, prog_fd, function)


def tracepoint_id(tracefs: str, tp: str) -> int:
    cat, name = tp.split(":")
    try:
        with open(os.path.join(tracefs, "events", cat, name, "id")) as f:
            return int(f.read())
    except (OSError, ValueError) as exc:
        raise BpfError("attach", f"no tracepoint {tp} ({exc})") from None


def attach_tracepoint(prog_fd: int, tracefs: str, tp: str) -> int:
    fd = _perf_event_open(_attr(PERF_TYPE_TRACEPOINT, tracepoint_id(tracefs, tp), PERF_SAMPLE_RAW, 1), -1, 0)
    if fd < 0:
        raise BpfError("attach", f"cannot open tracepoint {tp} ({_strerror(-fd)})", -fd)
    return _enable(fd, prog_fd, tp)


def _enable(fd: int, prog_fd: int, what: str) -> int:
    for req, arg in ((PERF_EVENT_IOC_SET_BPF, prog_fd), (PERF_EVENT_IOC_ENABLE, 0)):
        ret = _ioctl(fd, req, arg)
        if ret < 0:
            os.close(fd)
            raise BpfError("attach", f"cannot attach the BPF program to {what} ({_strerror(-ret)})", -ret)
    return fd


def possible_cpus(path: str = "/sys/devices/system/cpu/possible") -> int:
    """Number of possible CPU ids (the perf array is indexed by CPU id)."""
    return max(online_cpus(path)) + 1


def online_cpus(path: str = "/sys/devices/system/cpu/online") -> list[int]:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return list(range(os.cpu_count() or 1))
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out


class PerfRing:
    """One CPU's ring of PERF_COUNT_SW_BPF_OUTPUT records."""

    def __init__(self, cpu: int, pages: int = 64):
        self.page = mmap.PAGESIZE
        self.fd = _perf_event_open(_attr(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT, PERF_SAMPLE_RAW, 1),
                                   -1, cpu)
        if self.fd < 0:
            raise BpfError("ring", f"cannot open the perf ring of CPU {cpu} ({_strerror(-self.fd)})", -self.fd)
        self.size = pages * self.page
        try:
            self.mem = mmap.mmap(self.fd, self.page + self.size, mmap.MAP_SHARED,
                                 mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as exc:
            os.close(self.fd)
            raise BpfError("ring", f"cannot map the perf ring of CPU {cpu} ({exc})") from None
        self.cpu = cpu
        self.lost = 0

    def enable(self) -> None:
        _ioctl(self.fd, PERF_EVENT_IOC_ENABLE, 0)

    def drain(self) -> list[bytes]:
        """Every complete record's raw data since the last call (the kernel may overwrite
        nothing we have not consumed: the tail is advanced only after reading)."""
        m = self.mem
        head = struct.unpack_from("<Q", m, 1024)[0]
        _libc.getpid()              # a foreign call: the GIL round trip orders the loads below
        tail = struct.unpack_from("<Q", m, 1032)[0]
        out = []
        while tail < head:
            base = self.page
            pos = tail % self.size
            hdr = self._read(base, pos, 8)
            rtype, _misc, rsize = struct.unpack("<IHH", hdr)
            if rsize < 8:
                tail = head                       # corrupt: drop everything pending
                break
            if rtype == PERF_RECORD_SAMPLE:
                body = self._read(base, (pos + 8) % self.size, rsize - 8)
                n = struct.unpack_from("<I", body, 0)[0]
                out.append(body[4:4 + n])
            elif rtype == PERF_RECORD_LOST:
                body = self._read(base, (pos + 8) % self.size, 16)
                self.lost += struct.unpack_from("<Q", body, 8)[0]
            tail += rsize
        struct.pack_into("<Q", m, 1032, tail)
        return out

    def _read(self, base: int, pos: int, n: int) -> bytes:
        end = pos + n
        if end <= self.size:
            return self.mem[base + pos:base + end]
        return self.mem[base + pos:base + self.size] + self.mem[base:base + end - self.size]

    def close(self) -> None:
        try:
            self.mem.close()
        finally:
            os.close(self.fd)


class Loaded:
    """A loaded and attached BpfObject (see bpf_codegen): maps, programs, probes, rings."""

    def __init__(self):
        self.maps: dict[str, int] = {}
        self.progs: dict[str, int] = {}
        self.links: list[int] = []
        self.rings: list[PerfRing] = []
        self.poller = None

    def close(self) -> None:
        """Detach and free everything (probes first, so nothing fires into a closed ring)."""
        for fd in self.links:
            _ioctl(fd, PERF_EVENT_IOC_DISABLE, 0)
            os.close(fd)
        self.links = []
        for r in self.rings:
            r.close()
        self.rings = []
        if self.poller is not None:
            self.poller.close()
            self.poller = None
        for fd in list(self.progs.values()) + list(self.maps.values()):
            os.close(fd)
        self.progs, self.maps = {}, {}

    def poll(self, timeout_ms: int) -> list[bytes]:
        if self.poller is None:
            return []
        ready = self.poller.poll(timeout_ms / 1000.0)
        out = []
        for ring in self.rings if ready else ():
            out += ring.drain()
        return out

    def stack(self, stack_id: int) -> list[int]:
        fd = self.maps.get("gtk_kt_stacks")
        if fd is None or stack_id < 0:
            return []
        raw = map_lookup(fd, struct.pack("<I", stack_id), 8 * 127)
        if raw is None:
            return []
        addrs = struct.unpack(f"<{len(raw) // 8}Q", raw)
        return [a for a in addrs if a][:127]

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.rings)


def load(obj: dict, tracefs: str | None) -> Loaded:
    """Create the maps, load and attach the programs of a wire-form BpfObject; open the rings."""
    out = Loaded()
    try:
        for m in obj["maps"]:
            entries = m["max_entries"] or possible_cpus()
            out.maps[m["name"]] = create_map(m["name"], m["type"], m["key_size"], m["value_size"], entries)
        progs = [(p, bpf_insn.from_wire(p["insns"])) for p in obj["progs"]]
        for p, insns in progs:
            code = bpf_insn.encode(insns, out.maps)
            out.progs[p["name"]] = load_program(p["name"], p["type"], code)
        events = out.maps.get("gtk_kt_events")
        if events is not None:                 # rings before probes: no early record is lost
            out.poller = select.epoll()
            for cpu in online_cpus():
                ring = PerfRing(cpu)
                out.rings.append(ring)
                map_update(events, struct.pack("<I", cpu), struct.pack("<I", ring.fd))
                ring.enable()
                out.poller.register(ring.fd, select.EPOLLIN)
        for p, _ in progs:
            fd = out.progs[p["name"]]
            if p["attach"] in ("kprobe", "kretprobe"):
                out.links.append(attach_kprobe(fd, p["target"], p["attach"] == "kretprobe"))
            elif p["attach"] == "tracepoint":
                if not tracefs:
                    raise BpfError("attach", "tracefs is not mounted")
                out.links.append(attach_tracepoint(fd, tracefs, p["target"]))
            else:
                raise BpfError("attach", f"unknown attach kind {p['attach']!r}")
    except BaseException:
        out.close()
        raise
    return out
