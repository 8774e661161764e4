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
    """The Field objects of a record class or instance, in order."""
    return getattr(cls_or_instance, "__record_fields__")


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


def _init_source(flist: tuple, frozen: bool, post_init: bool) -> tuple[str, dict]:
    """The source of a record's compiled __init__ and the namespace it runs in."""
    namespace = {"_MISSING": _MISSING, "_object_setattr": object.__setattr__}
    params, body = [], []
    for f in flist:
        if f.default is not _MISSING:
            namespace[f"_dflt_{f.name}"] = f.default
            params.append(f"{f.name}=_dflt_{f.name}")
            value = f.name
        elif f.default_factory is not _MISSING:
            namespace[f"_fact_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            value = f"_fact_{f.name}() if {f.name} is _MISSING else {f.name}"
        else:
            params.append(f.name)
            value = f.name
        body.append(f"_object_setattr(self, {f.name!r}, {value})" if frozen else f"self.{f.name} = {value}")
    if post_init:
        body.append("self.__post_init__()")
    src = [f"def __init__(self, {', '.join(params)}):" if params else "def __init__(self):"]
    src += [f"    {line}" for line in body or ["pass"]]
    return "\n".join(src), namespace


def _process(cls, eq: bool, frozen: bool, slots: bool):
    own: dict[str, Field] = {}
    mro = cls.__mro__
    if len(mro) > 2:        # (cls, object): no base can have fields, the usual case
        for base in reversed(mro[1:]):
            for f in getattr(base, "__record_fields__", ()):
                own[f.name] = f
    body = cls.__dict__
    for name, annotation in body.get("__annotations__", {}).items():
        if type(annotation) is not type and _is_classvar(annotation):   # a plain class: never
            continue
        value = body.get(name, _MISSING)
        f = value if isinstance(value, Field) else Field(value)
        f.name = name
        if isinstance(f.default, (list, dict, set)):
            raise ValueError(f"mutable default {type(f.default).__name__} for field {name}: "
                             "use default_factory")
        own.pop(name, None)         # a redefined base field moves to the end
        own[name] = f
    flist = tuple(own.values())
    # one pass over the fields for everything the methods below need
    names, tail, compared, shown, json_names = [], [], [], [], []
    defaulted = False
    for f in flist:
        if f.default is not _MISSING or f.default_factory is not _MISSING:
            defaulted = True
        elif defaulted:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
        names.append(f.name)
        tail.append((f.name, f.default, f.default_factory))
        if f.compare:
            compared.append(f.name)
        if f.repr:
            shown.append(f.name)
        if not f.metadata.get("json_skip"):
            json_names.append(f.name)
    names, tail, compared, shown = tuple(names), tuple(tail), tuple(compared), tuple(shown)
    post_init = hasattr(cls, "__post_init__")
    # The compiled __init__ (~0.6 us an instance) costs a compile (~80 us in a fresh gdb) to
    # make; a command makes three ElfFiles but 3000 SlotRows.  So the first COMPILE_AFTER
    # instances go through a generic __init__ (same binding rules, a few us each) and only a
    # class that gets more is compiled -- a first 'got' on a small program compiles nothing
    # (and builds no source text either: ~12 record classes are made on its way).
    final = []          # the class, once built (slots=True makes a new one)
    made = [0]
    setter = object.__setattr__ if frozen else setattr

    def __init__(self, *args, **kwargs):
        made[0] += 1
        if made[0] > COMPILE_AFTER:
            source, namespace = _init_source(flist, frozen, post_init)
            exec(source, namespace)
            real = namespace["__init__"]
            real.__qualname__ = f"{final[0].__qualname__}.__init__"
            final[0].__init__ = real
            return real(self, *args, **kwargs)
        n = len(args)
        if n > len(names):
            raise TypeError(f"{type(self).__qualname__}() takes {len(names)} arguments, "
                            f"{n} given")
        if kwargs:
            for key in kwargs:
                if key not in names:
                    raise TypeError(f"{type(self).__qualname__}() got an unexpected keyword argument {key!r}")
            for name in names[:n]:
                if name in kwargs:
                    raise TypeError(f"{type(self).__qualname__}() got multiple values for argument {name!r}")
        for name, value in zip(names, args):
            setter(self, name, value)
        for name, default, factory in tail[n:]:
            if name in kwargs:
                value = kwargs[name]
            elif default is not _MISSING:
                value = default
            elif factory is not _MISSING:
                value = factory()
            else:
                raise TypeError(f"{type(self).__qualname__}() missing required argument {name!r}")
            setter(self, name, value)
        if post_init:
            self.__post_init__()

    methods = {"__init__": __init__}

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return tuple(getattr(self, n) for n in compared) == tuple(getattr(other, n) for n in compared)

    def __hash__(self):
        return hash(tuple(getattr(self, n) for n in compared))

    def __setattr__(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self):
        return f"{type(self).__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in shown)})"

    if eq:
        methods["__eq__"] = __eq__
        methods["__hash__"] = __hash__ if frozen else None
    if frozen:
        methods["__setattr__"] = __setattr__
        methods["__delattr__"] = __delattr__
    methods["__repr__"] = __repr__
    if slots:
        body_dict = {k: v for k, v in cls.__dict__.items()
                     if k not in own and k not in ("__dict__", "__weakref__")}
        body_dict["__slots__"] = tuple(f.name for f in flist
                                      if not any(f.name in getattr(b, "__slots__", ()) for b in cls.__mro__[1:]))
        cls = type(cls)(cls.__name__, cls.__bases__, body_dict)
    else:
        for f in flist:
            # the class attribute of a field is its default (as with dataclasses), never a Field
            if isinstance(cls.__dict__.get(f.name), Field):
                if f.default is _MISSING:
                    delattr(cls, f.name)
                else:
                    setattr(cls, f.name, f.default)
    for name, fn in methods.items():
        if name in cls.__dict__ and (name != "__hash__" or cls.__dict__[name] is not None):
            continue            # the class defines it itself (as dataclasses, it wins)
        if fn is not None:
            fn.__qualname__ = f"{cls.__qualname__}.{name}"
        setattr(cls, name, fn)
    final.append(cls)
    cls.__record_fields__ = flist
    cls.__record_json__ = tuple(json_names)
    cls.__match_args__ = names
    return cls


def replace(obj, **changes):
    """A new record like *obj* with *changes* (dataclasses.replace: __init__ and
    __post_init__ run again; the other fields are shared, not copied)."""
    names = [f.name for f in fields(obj)]
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
    cls.__record_json__ = tuple(renames.get(f.name, f.name) for f in fields(cls)
                                if not f.metadata.get("json_skip"))
    return cls
