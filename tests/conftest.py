import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_configure(config):
    config.addinivalue_line("markers", "gdb: drives a real gdb")
    config.addinivalue_line("markers", "guest: needs a real kernel; runs inside the x86_64 QEMU guest")
    config.addinivalue_line("markers", "guest_arm64: needs a real arm64 kernel or arm64 programs; "
                                       "runs inside the arm64 QEMU guest")
    config.addinivalue_line("markers", "guest_newkernel: needs Debian's newer kernel (bookworm-"
                                       "backports, 6.12); runs inside the x86_64-new QEMU guest")
    # Guest-marked tests: on the host they are run inside ONE QEMU guest (see docs/guest.md).
    from tests.guest.pytest_bridge import Bridge
    config.pluginmanager.register(Bridge(), "gdb_toolkit_guest_bridge")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT
