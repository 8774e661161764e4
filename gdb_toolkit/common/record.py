"""``@record``: the part of ``@dataclasses.dataclass`` the toolkit uses, without its import.

``import dataclasses`` imports ``inspect`` (and with it ``ast``, ``dis``, ``tokenize``...):
~4 ms, and each decorated class costs a few hundred microseconds more (several ``exec``
calls, ``inspect.signature`` for a class without a docstring).  A command pays that on its
first call (issue 14: first-call import share < 15 ms).  Classes on first-call paths use
``@record`` instead; the rest of the toolkit keeps ``dataclasses``.

Supported, with dataclasses' meaning: annotated fields in order (a base record's first),
defaults, ``field(default=, default_factory=, repr=, compare=, metadata=)``, ``__post_init__``,
``eq`` (``__eq__`` over the compared fields, instances unhashable), ``frozen=True``
(read-only, hashable), ``slots=True``.  ``ClassVar`` annotations are not fields.  JSON
(common.render.to_jsonable) reads ``__record_json__``: the fields whose metadata does not
say ``json_skip``.

Cost: a first call defines ~25 record classes before it does any work, so decorating is kept
cheap -- one pass over the annotations into plain tuples, the same few methods for every
record (they read the class's ``__record_spec__``), ``Field`` objects only for fields that
were given ``field(...)`` (``fields()`` makes the others when asked).  About 55 k instructions
a 10-field class (it was 117 k), dataclasses' several hundred k.
"""

_MISSING = object()
#: instances made through the generic __init__ before a class gets its compiled one
COMPILE_AFTER = 32


class FrozenInstanceError(AttributeError):
    """Assigning to a field of a frozen record."""


class Field:
    __slots__ = ("name", "default", "default_factory", "repr", "compare", "metadata")

    def __init__(self, default=_MISSING, default_factory=_MISSING, repr=True, compare=True,
                 metadata=None):
        if default is not _MISSING and default_factory is not _MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = None
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare
        self.metadata = metadata or {}

    def __repr__(self):
        return f"Field({self.name!r})"


class SlotFields:
    """Equality and repr over ``__slots__``, for the small hand-written classes of hot paths
    (plt's ELF sections, segments, symbols, relocations, bindings, link-map entries): millions
    are made while a large program's tables are read, and a class with a plain ``__init__``
    over ``__slots__`` builds them faster than a record's.  Equal when of the same type with
    equal slots (instances unhashable, as a record with ``eq``); repr ``Name(v1, v2, ...)``.
    Shared here instead of each class carrying the same two methods."""
    __slots__ = ()

    def __eq__(self, other):
        return type(other) is type(self) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(repr(getattr(self, k)) for k in self.__slots__)})"


def field(*, default=_MISSING, default_factory=_MISSING, repr=True, compare=True, metadata=None):
    """A field with options (see dataclasses.field)."""
    return Field(default, default_factory, repr, compare, metadata)


def fields(cls_or_instance) -> tuple:
    """The Field objects of a record class or instance, in order (made on first request:
    most classes never need them)."""
    spec = getattr(cls_or_instance, "__record_spec__")
    if spec.fields is None:
        spec.fields = tuple(e[6] or _field_of(e) for e in spec.entries)
    return spec.fields


def json_names(cls) -> tuple:
    """The names of record *cls*'s fields that go into its JSON (metadata without
    ``json_skip``), before any renaming."""
    return cls.__record_spec__.json


def record(cls=None, /, *, eq: bool = True, frozen: bool = False, slots: bool = False):
    """Class decorator: see the module doc."""
    def wrap(c):
        return _process(c, eq, frozen, slots)

    return wrap if cls is None else wrap(cls)


def _is_classvar(annotation) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    # int, a class, list[int], int | None: not typing's; only typing's objects need their repr
    return type(annotation).__module__ == "typing" and repr(annotation).startswith("typing.ClassVar")


def _field_of(entry: tuple) -> Field:
    f = Field(entry[1], entry[2], entry[3], entry[4], entry[5] or {})
    f.name = entry[0]
    return f


class _Spec:
    """What a record class's methods need, kept on the class as ``__record_spec__``: the
    methods are the same few functions for every record (below), not closures made per
    class, and what they read is worked out when first read (``__getattr__``) -- a first
    call defines ~25 record classes on its way, most never compared or printed (issue 14)."""
    __slots__ = ("cls", "entries", "names", "json", "post_init", "frozen", "made", "fields",
                 "tail", "compared", "shown")

    def __init__(self, entries: tuple, names: tuple, plain: bool, post_init: bool, frozen: bool):
        # entries: (name, default, default_factory, repr, compare, metadata, Field or None)
        self.cls = None
        self.entries, self.names = entries, names
        # *plain*: no field() options, so every field is shown, compared and in the JSON
        self.json = names if plain else tuple(e[0] for e in entries
                                              if not (e[5] and e[5].get("json_skip")))
        if plain:
            self.compared = self.shown = names
        self.post_init = post_init
        self.frozen = frozen
        self.made = 0
        self.fields = None

    def __getattr__(self, attr):
        """A slot not set yet: the argument table or the compared/shown names, made once."""
        if attr == "tail":
            value = tuple(e[:3] for e in self.entries)
        elif attr == "compared":
            value = tuple(e[0] for e in self.entries if e[4])
        elif attr == "shown":
            value = tuple(e[0] for e in self.entries if e[3])
        else:
            raise AttributeError(attr)
        setattr(self, attr, value)
        return value


_MUTABLE = (list, dict, set)
#: annotation types that are never ClassVar (a class, ``int | None``, ``list[int]``): the
#: check below is skipped for them (it ran for every field of every record)
_PLAIN_ANNOTATIONS = (type, type(int | None), type(list[int]))


def _init_source(spec: _Spec) -> tuple[str, dict]:
    """The source of a record's compiled __init__ and the namespace it runs in."""
    namespace = {"_MISSING": _MISSING, "_object_setattr": object.__setattr__}
    params, body = [], []
    for name, default, factory in spec.tail:
        if default is not _MISSING:
            namespace[f"_dflt_{name}"] = default
            params.append(f"{name}=_dflt_{name}")
            value = name
        elif factory is not _MISSING:
            namespace[f"_fact_{name}"] = factory
            params.append(f"{name}=_MISSING")
            value = f"_fact_{name}() if {name} is _MISSING else {name}"
        else:
            params.append(name)
            value = name
        body.append(f"_object_setattr(self, {name!r}, {value})" if spec.frozen else f"self.{name} = {value}")
    if spec.post_init:
        body.append("self.__post_init__()")
    src = [f"def __init__(self, {', '.join(params)}):" if params else "def __init__(self):"]
    src += [f"    {line}" for line in body or ["pass"]]
    return "\n".join(src), namespace


# -- the methods every record shares (each reads its class's __record_spec__) ---------------
def _record_init(self, *args, **kwargs):
    # The compiled __init__ (~0.6 us an instance) costs a compile (~80 us in a fresh gdb) to
    # make; a command makes three ElfFiles but 3000 SlotRows.  So the first COMPILE_AFTER
    # instances go through this generic one (same binding rules, a few us each) and only a
    # class that gets more is compiled -- a first 'got' on a small program compiles nothing.
    spec = self.__record_spec__
    spec.made += 1
    if spec.made > COMPILE_AFTER:
        source, namespace = _init_source(spec)
        exec(source, namespace)
        real = namespace["__init__"]
        real.__qualname__ = f"{spec.cls.__qualname__}.__init__"
        spec.cls.__init__ = real
        return real(self, *args, **kwargs)
    names = spec.names
    n = len(args)
    if n > len(names):
        raise TypeError(f"{type(self).__qualname__}() takes {len(names)} arguments, {n} given")
    if kwargs:
        for key in kwargs:
            if key not in names:
                raise TypeError(f"{type(self).__qualname__}() got an unexpected keyword argument {key!r}")
        for name in names[:n]:
            if name in kwargs:
                raise TypeError(f"{type(self).__qualname__}() got multiple values for argument {name!r}")
    setter = object.__setattr__ if spec.frozen else setattr
    for name, value in zip(names, args):
        setter(self, name, value)
    for name, default, factory in spec.tail[n:]:
        if name in kwargs:
            value = kwargs[name]
        elif default is not _MISSING:
            value = default
        elif factory is not _MISSING:
            value = factory()
        else:
            raise TypeError(f"{type(self).__qualname__}() missing required argument {name!r}")
        setter(self, name, value)
    if spec.post_init:
        self.__post_init__()


def _record_eq(self, other):
    if other.__class__ is not self.__class__:
        return NotImplemented
    compared = self.__record_spec__.compared
    return tuple(getattr(self, n) for n in compared) == tuple(getattr(other, n) for n in compared)


def _record_hash(self):
    return hash(tuple(getattr(self, n) for n in self.__record_spec__.compared))


def _record_setattr(self, name, value):
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _record_delattr(self, name):
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _record_repr(self):
    shown = self.__record_spec__.shown
    return f"{type(self).__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in shown)})"


#: (eq, frozen) -> the methods a record gets, unless its class defines them itself
_METHODS = {
    (eq, frozen): (("__init__", _record_init), ("__repr__", _record_repr))
    + ((("__eq__", _record_eq), ("__hash__", _record_hash if frozen else None)) if eq else ())
    + ((("__setattr__", _record_setattr), ("__delattr__", _record_delattr)) if frozen else ())
    for eq in (False, True) for frozen in (False, True)}


def _process(cls, eq: bool, frozen: bool, slots: bool):
    own: dict[str, tuple] = {}
    mro = cls.__mro__
    if len(mro) > 2:        # (cls, object): no base can have fields, the usual case
        for base in reversed(mro[1:]):
            base_spec = base.__dict__.get("__record_spec__")
            if base_spec is not None:
                for e in base_spec.entries:
                    own[e[0]] = e
    body = cls.__dict__
    plain = not own
    defaulted = False
    for name, annotation in body.get("__annotations__", {}).items():
        if type(annotation) not in _PLAIN_ANNOTATIONS and _is_classvar(annotation):
            continue
        value = body.get(name, _MISSING)
        if type(value) is Field:
            value.name = name
            entry = (name, value.default, value.default_factory, value.repr, value.compare,
                     value.metadata, value)
            value = value.default
            plain = False
            if value is _MISSING and entry[2] is not _MISSING:
                defaulted = True
        else:
            entry = (name, value, _MISSING, True, True, None, None)
        if value is not _MISSING:
            if type(value) in _MUTABLE:
                raise ValueError(f"mutable default {type(value).__name__} for field {name}: "
                                 "use default_factory")
            defaulted = True
        elif defaulted and entry[2] is _MISSING and plain:
            raise TypeError(f"non-default argument {name!r} follows default argument")
        if plain:
            own[name] = entry       # annotations' names are unique: no base, no Field yet
        else:
            own.pop(name, None)     # a redefined base field moves to the end
            own[name] = entry
    entries = tuple(own.values())
    names = tuple(own)
    if not plain:                   # base fields or field(): the order rule over all of them
        defaulted = False
        for e in entries:
            if e[1] is not _MISSING or e[2] is not _MISSING:
                defaulted = True
            elif defaulted:
                raise TypeError(f"non-default argument {e[0]!r} follows default argument")
    spec = _Spec(entries, names, plain, hasattr(cls, "__post_init__"), frozen)
    if slots:
        body_dict = {k: v for k, v in body.items()
                     if k not in own and k not in ("__dict__", "__weakref__")}
        body_dict["__slots__"] = tuple(e[0] for e in entries
                                      if not any(e[0] in getattr(b, "__slots__", ()) for b in cls.__mro__[1:]))
        cls = type(cls)(cls.__name__, cls.__bases__, body_dict)
        body = cls.__dict__
    elif not plain:
        for e in entries:
            # the class attribute of a field is its default (as with dataclasses), never a Field
            if e[6] is not None and body.get(e[0]) is e[6]:
                if e[1] is _MISSING:
                    delattr(cls, e[0])
                else:
                    setattr(cls, e[0], e[1])
    for name, fn in _METHODS[eq, frozen]:
        if name in body and (name != "__hash__" or body[name] is not None):
            continue            # the class defines it itself (as dataclasses, it wins)
        setattr(cls, name, fn)
    spec.cls = cls
    cls.__record_spec__ = spec
    cls.__record_json__ = spec.json
    cls.__match_args__ = spec.names
    return cls


def replace(obj, **changes):
    """A new record like *obj* with *changes* (dataclasses.replace: __init__ and
    __post_init__ run again; the other fields are shared, not copied)."""
    names = obj.__record_spec__.names
    for key in changes:
        if key not in names:
            raise TypeError(f"{type(obj).__qualname__} has no field {key!r}")
    return type(obj)(**{n: changes[n] if n in changes else getattr(obj, n) for n in names})


def json_keys(cls, renames: dict):
    """Print record *cls*'s fields under other JSON keys (``{attribute: key}``): the JSON
    contract gives one key one meaning and one type in every command (docs/json.md), which
    an attribute name chosen for one module's code does not always have.  Each key becomes a
    read-only property for the attribute (``to_jsonable`` reads the report by its JSON
    names); ``__json_hex__`` names keys, so list the new ones there."""
    for attr, key in renames.items():
        setattr(cls, key, property(lambda self, _a=attr: getattr(self, _a)))
    cls.__record_json__ = tuple(renames.get(n, n) for n in json_names(cls))
    return cls
