"""A QEMU guest booting Debian's own x86_64 kernel, for tests that need a real kernel.

See docs/guest.md.  ``run_in_guest`` (vm.py) is the API; ``python3 -m tests.guest`` the CLI;
``pytest_bridge`` the host-side pytest integration; ``report_plugin`` the in-guest reporter.
"""
