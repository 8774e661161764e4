"""The seed's ktrace workflows (trace a kernel function for the inferior, land $ktask, read task
fields through kcore) in the arm64 guest: the same tests as the x86_64 guest's
(test_ktrace_guest.py), collected here under the guest_arm64 marker so they run on Debian's
arm64 kernel (KASLR, 48-bit VA, arm64 task layout) with the root's arm64 bcc.
"""
import pytest

from tests.integration import test_ktrace_guest as x86
from tests.integration.test_ktrace_guest import (  # noqa: F401 -- collected here for arm64
    test_mmap_workflow_names_the_get_unmapped_area_callback,
    test_no_leftovers_after_worker_sigkill_ctrl_c_and_gdb_sigkill)

pytestmark = pytest.mark.guest_arm64


@pytest.mark.xfail(strict=True, reason="'ktask PID' walks init_task, a data symbol: Debian's arm64 kernel "
                   "has no CONFIG_KALLSYMS_ALL and kern's data-symbol source (issue 17) is not on this "
                   "branch yet ($ktask from the trace itself works: the mmap workflow)")
def test_stack_overflow_workflow_size_retval_and_rlimit():
    x86.test_stack_overflow_workflow_size_retval_and_rlimit()
