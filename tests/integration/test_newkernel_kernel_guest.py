"""test_kernel_guest.py's tests on Debian's newer kernel (the x86_64-new guest, docs/guest.md)."""
from tests.support.newkernel import collect_again

pytestmark = collect_again(globals(), "tests.integration.test_kernel_guest", exclude={
    "test_non_root_gets_one_line_reasons":
        "CI time (63-133 s under TCG): the permission messages do not depend on the kernel "
        "version; the 6.1 guest runs it"})
