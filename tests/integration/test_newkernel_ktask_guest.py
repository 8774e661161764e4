"""test_ktask_sources_guest.py's tests on Debian's newer kernel (the x86_64-new guest, docs/guest.md)."""
from tests.support.newkernel import collect_again

pytestmark = collect_again(globals(), "tests.integration.test_ktask_sources_guest", exclude={
    "test_ktask_and_ktypes_on_a_vmcore_agree_with_the_live_kernel":
        "CI time (148 s under a loaded TCG guest): ktask/ktypes on 6.12 are covered through the "
        "gdbstub here, reading a vmcore of 6.12 by test_newkernel_{sources,modules}_guest.py"})
