"""Run an x86_64 guest test module again on Debian's newer kernel (the ``x86_64-new`` guest).

A file ``tests/integration/test_newkernel_<what>_guest.py`` holds only::

    from tests.support.newkernel import collect_again
    pytestmark = collect_again(globals(), "tests.integration.test_kernel_guest")

which puts the module's tests and fixtures into that file's namespace (so pytest collects them
there, with their own parametrisations, under the ``guest_newkernel`` marker instead of the
module's ``guest``): the same test functions, not copies, against the same independent oracles.
One source module per file, so module-scoped fixtures keep the module's lifetime.
"""
import importlib

import pytest


def _is_fixture(obj) -> bool:
    return (getattr(obj, "_pytestfixturefunction", None) is not None          # pytest 7
            or type(obj).__name__ == "FixtureFunctionDefinition")             # pytest 8.4+


def collect_again(namespace: dict, module_name: str, exclude: dict | None = None):
    """Copy *module_name*'s tests and fixtures into *namespace*; returns the ``pytestmark`` for
    the new-kernel guest.  *exclude*: test name -> why it does not run there (each name must
    exist, so a renamed test cannot slip out of the set silently)."""
    mod = importlib.import_module(module_name)
    exclude = exclude or {}
    missing = [name for name in exclude if not hasattr(mod, name)]
    if missing:
        raise LookupError(f"{module_name} has no {', '.join(missing)} (excluded by name)")
    for name, obj in vars(mod).items():
        if name in exclude or name == "pytestmark":
            continue
        if (name.startswith("test_") and callable(obj)) or _is_fixture(obj):
            namespace[name] = obj
    return pytest.mark.guest_newkernel
