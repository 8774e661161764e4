"""The lookup-scope audit: per slot, the definition the dynamic linker's lookup SHOULD bind
(following the link_map search order, symbol versions, preloads and interposition) against
what the slot holds now; overwritten or hijacked GOT entries are flagged.

The scope follows glibc's ``_dl_lookup_symbol_x``: the global scope of the slot's
namespace (the main program, LD_PRELOAD objects, then the DT_NEEDED closure in load
order), then the requesting object's own local scope (a dlopen'ed object and its
dependencies); an object with DF_SYMBOLIC looks in itself first.  A candidate matches
when it is defined, exported (global, weak or unique; not hidden), and carries the
requested version (``memcpy@GLIBC_2.14``), or, for an unversioned reference, its default
version.  Objects dlopen'ed with RTLD_GLOBAL join the global scope at run time without
a trace in the link_map: a slot bound to such a definition is reported as
``other-definition``, never as overwritten.
"""
from gdb_toolkit.common.record import record
from gdb_toolkit.plt.elf_file import STV_PROTECTED, Symbol
from gdb_toolkit.plt.elf_model import SlotSpec
from gdb_toolkit.plt.slots import AddressSpace, LoadedObject, SlotRow

_DEF_TYPES = (0, 1, 2, 5, 6, 10)          # NOTYPE OBJECT FUNC COMMON TLS GNU_IFUNC
AUDITED = ("JUMP_SLOT", "GLOB_DAT", "ABS")


@record
class Definition:
    obj: LoadedObject
    sym: Symbol
    canonical: bool = False       # a non-PIE program's canonical PLT entry (undefined symbol)

    @property
    def address(self) -> int:
        return self.obj.bias + self.sym.value

    def text(self) -> str:
        """``name@VER in lib.so``: the name printed (escape_name), the object's name already is."""
        from gdb_toolkit.common.names import escape_name

        ver = f"@{self.sym.version}" if self.sym.version else ""
        where = " (its canonical PLT entry: the function's address in the whole process)" if self.canonical else ""
        if self.obj.preloaded:
            where += " (LD_PRELOAD)"
        return f"{escape_name(self.sym.name + ver)} in {self.obj.name}{where}"


def _needed_closure(root: LoadedObject, objs: list[LoadedObject]) -> list[LoadedObject]:
    """root and its DT_NEEDED dependencies, breadth first (matched by soname or file name)."""
    by_name: dict[str, LoadedObject] = {}
    for o in objs:
        for key in (o.model.soname, o.model.name):
            if key:
                by_name.setdefault(key, o)
    out, queue = [root], [root]
    while queue:
        cur = queue.pop(0)
        for n in cur.model.needed:
            dep = by_name.get(n) or by_name.get(n.rsplit("/", 1)[-1])
            if dep is not None and dep not in out:
                out.append(dep)
                queue.append(dep)
    return out


class Scopes:
    """Lookup scopes of one process's objects (computed once per namespace)."""

    def __init__(self, objects: list[LoadedObject]):
        self.objects = sorted(objects, key=lambda o: (o.namespace, o.order))
        self._global: dict[int, list[LoadedObject]] = {}

    def global_scope(self, ns: int) -> list[LoadedObject]:
        if ns not in self._global:
            members = [o for o in self.objects if o.namespace == ns]
            if not members:
                self._global[ns] = []
            else:
                closure = _needed_closure(members[0], members)
                last = max(o.order for o in closure)
                # the start-up objects: everything loaded before the last dependency of the
                # root (LD_PRELOAD objects sit between the program and its dependencies)
                self._global[ns] = [o for o in members if o.order <= last or o in closure]
        return self._global[ns]

    def scope_of(self, obj: LoadedObject) -> list[LoadedObject]:
        scope = list(self.global_scope(obj.namespace))
        if obj not in scope:
            members = [o for o in self.objects if o.namespace == obj.namespace]
            scope += [o for o in _needed_closure(obj, members) if o not in scope]
        if obj.model.symbolic:
            scope = [obj] + [o for o in scope if o is not obj]
        return scope

    def definitions(self, spec: SlotSpec, scope: list[LoadedObject]) -> list[Definition]:
        """Every matching definition of the slot's symbol, in lookup order (one per object:
        the one ld.so's check_match takes there)."""
        out = []
        plt_class = spec.kind == "JUMP_SLOT"
        name = spec.symbol
        for o in scope:
            m = o.model
            if name not in m.exports and (plt_class or name not in m.canonical_plt):
                continue        # (a dict probe, not a call: 300 objects x 2000 slots)
            hit = match_in_object(spec, m, plt_class)
            if hit is not None:
                out.append(Definition(o, hit, not hit.shndx))
        return out

    def any_definition_at(self, spec: SlotSpec, value: int, space: AddressSpace) -> Definition | None:
        """A definition of the symbol (in any loaded object) that the value points at, of
        the version a versioned reference asks for (or unversioned): ld.so's check_match never
        gives a ``foo@VER_1`` slot the ``foo@@VER_2`` definition, so a slot holding it was
        written by someone else."""
        obj = space.find(value)
        if obj is None:
            return None
        for s in obj.model.exports.get(spec.symbol, ()):
            if spec.version and s.version and s.version != spec.version:
                continue
            if s.type in _DEF_TYPES and (obj.bias + s.value == value or s.type == 10):
                return Definition(obj, s)
        for s in obj.model.canonical_plt.get(spec.symbol, ()):
            if obj.bias + s.value == value:
                return Definition(obj, s, True)
        return None


SHN_ABS = 0xFFF1


def match_in_object(spec: SlotSpec, model, plt_class: bool) -> Symbol | None:
    """The definition of *spec*'s symbol that ld.so takes in one object, or None (glibc's
    check_match and do_lookup_x).  A JUMP_SLOT (the PLT class) skips undefined symbols; a
    GLOB_DAT accepts a program's canonical PLT entry.  A versioned reference
    (``foo@VER_2``) takes that version, or a non-hidden unversioned definition, or anything
    in an object without .gnu.version; an unversioned reference takes a definition whose
    version index is at most 2 (unversioned, or the OLDEST version), else the only
    non-hidden versioned one.  A hidden or internal definition ends the search there."""
    cands = list(model.exports.get(spec.symbol, ()))
    if not plt_class:
        cands += model.canonical_plt.get(spec.symbol, ())
    if not cands:
        return None
    has_versym, has_verdef = model.versioned
    versioned_sym, num_versions = None, 0
    found = None
    for s in cands:
        if s.type not in _DEF_TYPES or (not s.value and s.shndx != SHN_ABS and s.type != 6):
            continue
        if not has_versym:
            found = s
        elif spec.version:
            if s.version == spec.version:
                found = s
            elif spec.hidden_version or s.hidden_version or s.version_index >= 2 \
                    or (s.version_index == 1 and has_verdef):
                continue            # another version: ld.so's l_versions[ndx] names one
            else:
                found = s
        elif s.version_index >= 3:
            if not s.hidden_version:
                num_versions += 1
                versioned_sym = versioned_sym or s
            continue
        else:
            found = s
        break
    if found is None and num_versions == 1:
        found = versioned_sym
    if found is None or found.visibility in (1, 2):            # internal / hidden: local
        return None
    return found


@record
class Auditors:
    """The rtld-audit modules (LD_AUDIT, DT_AUDIT, DT_DEPAUDIT) loaded in the process, and
    every object of their namespaces (ld.so loads each auditor into a namespace of its own).
    Their la_symbind may return any address for a symbol; ld.so writes it into the slot."""
    modules: list[LoadedObject]
    objects: list[LoadedObject]

    @classmethod
    def find(cls, objects: list[LoadedObject], env_audit=()) -> "Auditors":
        names = {a.rsplit("/", 1)[-1] for a in env_audit}
        names |= {a.rsplit("/", 1)[-1] for o in objects for a in o.model.audit_libs}
        modules = [o for o in objects if o.path.rsplit("/", 1)[-1] in names]
        spaces = {o.namespace for o in modules if o.namespace}
        return cls(modules, [o for o in objects if o.namespace in spaces or o in modules])

    def holding(self, value: int, space: AddressSpace) -> LoadedObject | None:
        """The auditor whose namespace holds *value* (None if none does)."""
        holder = space.find(value) if value else None
        if holder is None or holder not in self.objects:
            return None
        return next((m for m in self.modules if m.namespace == holder.namespace), holder)

    def hint(self) -> str:
        if not self.modules:
            return ""
        return (f" (or by an rtld-audit module's la_symbind: {', '.join(sorted({m.name for m in self.modules}))} "
                "is loaded)")


NO_AUDITORS = Auditors([], [])


def _redirect_verdict(out: dict, spec: SlotSpec, module: LoadedObject, expected) -> dict:
    out.update(verdict="redirected",
               why=f"the rtld-audit module {module.name} (LD_AUDIT/DT_AUDIT) returned {out['holds']} from "
                   f"la_symbind for {spec.display}, and ld.so wrote that into the slot"
                   + (f"; the lookup itself found {expected.text()}" if expected else ""))
    return out


def audit_slot(spec: SlotSpec, obj: LoadedObject, row: SlotRow, scopes: Scopes, space: AddressSpace,
               auditors: Auditors = NO_AUDITORS) -> dict:
    """{"verdict", "expected", "holds", "why", "interposes"} for one slot."""
    holds = row.target
    if row.state == "not-relocated":
        return {"verdict": "not-relocated", "expected": None, "holds": holds, "why": "not relocated yet"}
    if not obj.relocated and obj.model.is_dynamic_linker:
        return {"verdict": "not-relocated", "expected": None, "holds": holds,
                "why": "ld.so's bootstrap self-relocation bound it to ld.so's own definition; ld.so relocates "
                       "itself again after the other start-up objects (not all relocated yet), and only then "
                       "binds what the lookup scope says"}
    if spec.kind == "IRELATIVE":
        home = space.find(row.value) if row.value else None
        if home is obj:
            return {"verdict": "ok", "expected": f"an implementation in {obj.name} (ifunc)", "holds": holds,
                    "why": "the ifunc resolver's choice lies in the object itself"}
        return {"verdict": "overwritten", "expected": f"an implementation in {obj.name} (ifunc)",
                "holds": holds, "why": "an IRELATIVE slot must point into its own object"}
    if spec.kind not in AUDITED or not spec.symbol:
        return {"verdict": "n/a", "expected": None, "holds": holds, "why": f"{spec.kind}: not a symbol binding"}
    scope = scopes.scope_of(obj)
    if any(s.visibility == STV_PROTECTED for s in obj.model.exports.get(spec.symbol, ())):
        # a reference to the object's own protected symbol binds it there first (glibc)
        scope = [obj] + [o for o in scope if o is not obj]
    defs = scopes.definitions(spec, scope)
    expected = defs[0] if defs else None
    out = {"expected": expected.text() if expected else None, "holds": holds,
           "interposes": [d.text() for d in defs[1:]]}
    if row.state == "unresolved":
        if obj.bind_not:
            cause = ("LD_BIND_NOT is set" if obj.no_write == "LD_BIND_NOT" else
                     "GOT[2] is _dl_runtime_profile (la_pltenter/la_pltexit or LD_PROFILE)")
            out.update(verdict="lazy", why=f"{cause}: ld.so never writes this slot, it stays the lazy "
                       "stub however often the function was called; every call is resolved again"
                       + (f" (to {expected.text()})" if expected else " (no object in scope defines it: a call fails)"))
            return out
        out.update(verdict="lazy", why="not called yet: still the lazy stub"
                   + (f"; the first call will bind {expected.text()}"
                      + (" (an ifunc: ld.so calls its resolver and writes the implementation it returns)"
                         if expected.sym.type == 10 else "") if expected else
                      "; no object in scope defines it: the first call will fail"))
        return out
    if expected is None:
        if row.value == 0 and (spec.weak or spec.kind == "GLOB_DAT"):
            out.update(verdict="ok", why="weak reference, no definition in scope: 0")
            return out
        other = scopes.any_definition_at(spec, row.value, space)
        if other is not None:
            if other.obj.namespace != obj.namespace:
                how = f"{other.obj.name} is in another namespace (dlmopen)"
            else:
                # not a start-up object, not a dependency of the requester: only the global
                # scope can have made it visible, and only dlopen(RTLD_GLOBAL) adds to it
                how = (f"{other.obj.name} (or an object depending on it) was loaded by dlopen with "
                       "RTLD_GLOBAL, which added it to the global scope -- or the slot was overwritten "
                       "with that function")
            out.update(verdict="other-definition", expected=None,
                       why=f"bound to {other.text()}, which is neither a start-up object nor a dependency of "
                           f"{obj.name}: {how}")
            return out
        module = auditors.holding(row.value, space)
        if module is not None:
            return _redirect_verdict(out, spec, module, None)
        out.update(verdict="overwritten", why=f"no object in the scope of {obj.name} defines "
                                              f"{spec.display}, yet the slot holds {holds}" + auditors.hint())
        return out
    holder = space.find(row.value) if row.value else None
    if expected.sym.type == 10 and holder is not None and holder.in_memory:
        # an ifunc resolver may return the kernel's vDSO implementation (glibc's time,
        # gettimeofday, clock_gettime on x86_64)
        out.update(verdict="ok", why=f"the lookup scope binds {expected.text()}, an ifunc whose resolver "
                                     f"chose the kernel's vDSO implementation ({holds})")
        return out
    if expected.sym.type == 10 and row.value == expected.address:
        # ld.so calls an ifunc's resolver and writes what it returns; the resolver's own
        # address in a slot makes every call run the resolver (which returns a pointer)
        out.update(verdict="overwritten",
                   why=f"the slot holds the ifunc resolver {expected.text()} itself, not the implementation it "
                       "returns: ld.so always calls the resolver and writes its choice, so a call through this "
                       "slot runs the resolver -- the GOT entry was overwritten (or written by a loader that "
                       "does not know ifuncs)")
        return out
    if row.value == expected.address or (expected.sym.type == 10 and holder is expected.obj):
        why = f"the lookup scope binds {expected.text()}"
        if defs[1:]:
            why += f" (interposing {', '.join(d.text() for d in defs[1:])})"
        out.update(verdict="ok", why=why)
        return out
    other = scopes.any_definition_at(spec, row.value, space)
    if other is not None:
        members = [o for o in scopes.objects if o.namespace == obj.namespace]
        if obj not in scopes.global_scope(obj.namespace) and other.obj in _needed_closure(obj, members):
            # a dlopen'ed object bound to its own (or its dependencies') definition ahead of
            # the global scope: its local scope came first
            how = (f"{obj.name} was loaded by dlopen with RTLD_DEEPBIND, which searches its own "
                   "dependencies before the global scope -- or the slot was overwritten with that function")
        else:
            how = "an interposer loaded later, or the slot was overwritten with that function"
        out.update(verdict="other-definition",
                   why=f"bound to {other.text()}, but the lookup order of {obj.name} finds {expected.text()} "
                       f"first: {how}")
        return out
    module = auditors.holding(row.value, space)
    if module is not None:
        return _redirect_verdict(out, spec, module, expected)
    out.update(verdict="overwritten",
               why=f"the slot holds {holds}, which is not a definition of {spec.display}; the lookup "
                   f"scope binds {expected.text()}: the GOT entry was overwritten after binding" + auditors.hint())
    return out


def audit_report(pairs: list[tuple[LoadedObject, SlotSpec, SlotRow]], objects: list[LoadedObject],
                 env_audit=()) -> list[str]:
    """Fill ``row.audit`` for every pair; return summary notes.  *env_audit*: the process's
    LD_AUDIT modules."""
    scopes = Scopes(objects)
    space = AddressSpace(objects)
    auditors = Auditors.find(objects, env_audit)
    counts: dict[str, int] = {}
    flagged = []
    for obj, spec, row in pairs:
        row.audit = audit_slot(spec, obj, row, scopes, space, auditors)
        v = row.audit["verdict"]
        counts[v] = counts.get(v, 0) + 1
        if v == "overwritten":
            flagged.append(f"{row.symbol} in {row.object} at 0x{row.address:x}")
    notes = ["audit: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))] if counts else []
    if auditors.modules:
        notes.append(f"rtld-audit modules loaded ({', '.join(sorted({m.name for m in auditors.modules}))}): "
                     "their la_symbind may bind any symbol to any address ('redirected')")
    if flagged:
        notes.append("OVERWRITTEN GOT slots (not what the dynamic linker bound): " + "; ".join(flagged))
    return notes
