"""valgrind vgdb helpers: memcheck from inside gdb, for processes that never exit.

Pure cores (no gdb): ``stacks`` (allocation stacks, the program frame),
``leak_records`` (leak_check output), ``leak_view`` (filter/sort/totals/deltas),
``memory_reports`` (who_points_at, block_list, xb/get_vbits, check_memory),
``error_reports`` (v.info all_errors / last_error / n_errs_found),
``vgdb_processes`` (live valgrind processes from vgdb FIFOs), ``launch``
(valgrind command line, waiting for the FIFO).  The gdb layer is
``gdb_session.py`` (connection state, monitor capture, error stops) and
``gdb_commands.py``.
"""
