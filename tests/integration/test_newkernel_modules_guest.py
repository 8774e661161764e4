"""test_kernel_modules_guest.py's tests on Debian's newer kernel (the x86_64-new guest, docs/guest.md)."""
from tests.support.newkernel import collect_again

pytestmark = collect_again(globals(), "tests.integration.test_kernel_modules_guest")
