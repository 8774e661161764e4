"""The JSON Schema files shipped in gdb_toolkit/schemas/, and a validator for
``--json`` documents (used by the tests; scripts may use it too).  Pure.

Validation needs the ``jsonschema`` package (Debian: python3-jsonschema);
loading the schemas needs nothing.
"""
import json
import os

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas")
BASE_URI = "https://gdb-toolkit.invalid/schemas/v6/"
ENVELOPE = "envelope.schema.json"
COMMON = "common.schema.json"


def schema_file(command: str) -> str:
    """The file name of *command*'s result schema: 'toolkit doctor' -> toolkit-doctor.schema.json."""
    return command.replace(" ", "-") + ".schema.json"


def available() -> list[str]:
    return sorted(f for f in os.listdir(SCHEMA_DIR) if f.endswith(".schema.json"))


def load(name: str) -> dict:
    with open(os.path.join(SCHEMA_DIR, name), encoding="utf-8") as f:
        return json.load(f)


def has_schema(command: str) -> bool:
    return os.path.isfile(os.path.join(SCHEMA_DIR, schema_file(command)))


def _validator(name: str):
    """A jsonschema validator for schema file *name*, resolving refs between the shipped files."""
    import jsonschema

    store = {BASE_URI + f: load(f) for f in available()}
    schema = store[BASE_URI + name]
    cls = jsonschema.validators.validator_for(schema)
    try:                                    # jsonschema >= 4.18
        from referencing import Registry, Resource

        registry = Registry().with_resources(
            (uri, Resource.from_contents(s)) for uri, s in store.items())
        return cls(schema, registry=registry)
    except ImportError:                      # Debian 12's jsonschema 4.10
        resolver = jsonschema.RefResolver(BASE_URI + name, schema, store=store)
        return cls(schema, resolver=resolver)


def errors(doc, name: str) -> list[str]:
    """Every way *doc* breaks schema *name* (empty list: valid)."""
    v = _validator(name)
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
            for e in sorted(v.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


def validate_document(doc, require_result_schema: bool = True) -> list[str]:
    """Check one ``--json`` document: the envelope, then (when ok) the result
    against the command's own schema.  Returns the problems found."""
    problems = [f"envelope: {e}" for e in errors(doc, ENVELOPE)]
    if problems or not doc.get("ok"):
        return problems
    name = schema_file(doc["command"])
    if not has_schema(doc["command"]):
        return [f"no schema file {name} for {doc['command']}"] if require_result_schema else []
    return [f"{name}: {e}" for e in errors(doc["result"], name)]
