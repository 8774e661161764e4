"""The command table: what gdb is given at load, generated from the command classes
by scripts/command_table.py (gdbsupport/registry.py explains it).  Do not edit:
regenerate it after changing a command's metadata or adding one."""
# flake8: noqa

SOURCES = (('gdbsupport/registry.py', 3942221913),
 ('gdbsupport/command.py', 2981659914),
 ('gdbsupport/toolkit_command.py', 3650507976),
 ('common/meta.py', 1390171923),
 ('doctor/gdb_commands.py', 3960926210),
 ('kernel/gdb_commands.py', 3757259586),
 ('ktrace/gdb_commands.py', 2777546213),
 ('plt/gdb_commands.py', 1661269313),
 ('stack/gdb_commands.py', 1215824019),
 ('valgrind/gdb_commands.py', 3330560225))

ENTRIES = (
    ('command',
     'toolkit commands',
     'gdb_toolkit.gdbsupport.toolkit_command',
     'ToolkitCommands',
     'List every command and convenience function\n'
     '\n'
     'Usage: toolkit commands [--json]\n'
     '\n'
     'Every gdb_toolkit command by category with its one-line summary, then the\n'
     'convenience functions and variables ($ksym, $kprobe, $ktask, ...). Each command\n'
     'is also "toolkit NAME" ("tk NAME"); a short NAME that another extension defined\n'
     'first is kept as theirs and said here.\n'
     '\n'
     'Examples:\n'
     '  (gdb) toolkit commands\n'
     '  (gdb) toolkit commands --json',
     False,
     4,
     {'name': 'toolkit commands',
      'gdb_name': 'toolkit commands',
      'summary': 'List every command and convenience function',
      'usage_lines': ['toolkit commands [--json]'],
      'category': 'toolkit',
      'examples': ['toolkit commands', 'toolkit commands --json'],
      'repeats': False,
      'schema': 'toolkit-commands.schema.json'}),
    ('command',
     'toolkit doctor',
     'gdb_toolkit.doctor.gdb_commands',
     'ToolkitDoctor',
     'What works on this machine, why not, and the fix\n'
     '\n'
     'Usage: toolkit doctor [--quick] [--json]\n'
     '\n'
     'Checks gdb and its Python, pyelftools, capstone and tabulate (optional), ptrace\n'
     'permission, /proc/kcore, kallsyms, BTF, kprobes, valgrind and vgdb, bcc and\n'
     'whether it can compile a probe (in a separate python3 process; --quick skips\n'
     'that), kernel headers, and root. Each check that fails says why and, under it,\n'
     'the fix.\n'
     '\n'
     'Examples:\n'
     '  (gdb) toolkit doctor\n'
     '  (gdb) toolkit doctor --quick\n'
     '  (gdb) toolkit doctor --json',
     False,
     4,
     {'name': 'toolkit doctor',
      'gdb_name': 'toolkit doctor',
      'summary': 'What works on this machine, why not, and the fix',
      'usage_lines': ['toolkit doctor [--quick] [--json]'],
      'category': 'toolkit',
      'examples': ['toolkit doctor', 'toolkit doctor --quick', 'toolkit doctor --json'],
      'repeats': False,
      'schema': 'toolkit-doctor.schema.json'}),
    ('command',
     'kcore',
     'gdb_toolkit.kernel.gdb_commands',
     'Kcore',
     'Kernel memory source: segments, release, KASLR\n'
     '\n'
     'Usage: kcore [PATH] [--kallsyms PATH] [--all-info] [--json]\n'
     '       kcore --gdb | --live\n'
     '\n'
     'Shows the kernel memory the kernel commands read -- /proc/kcore of the running\n'
     "kernel, a dump, or gdb's own target when it is a halted kernel -- with its\n"
     "segments, release, build-id and KASLR offset (VMCOREINFO's KERNELOFFSET).\n"
     '\n'
     'kcore PATH opens a dump (a kdump/makedumpfile vmcore, ELF or compressed, or\n'
     "QEMU's dump-guest-memory) and makes it the kernel of the following kprobe-list,\n"
     "kprobe-show, kdis, kx, ksym, ftrace-site commands; --gdb makes it gdb's target\n"
     '(chosen by itself after `target remote` to a stopped kernel); --live goes back\n'
     'to /proc/kcore. A dump or a halted kernel has no tracefs or debugfs: probes\n'
     "come from kernel memory alone, symbols from the kernel's own kallsyms tables,\n"
     'types from its BTF. Needs root for /proc/kcore.\n'
     '\n'
     'Examples:\n'
     '  (gdb) kcore\n'
     '  (gdb) kcore /var/crash/vmcore\n'
     '  (gdb) kcore --gdb\n'
     '  (gdb) kcore --live --json\n'
     '\n'
     'Also "toolkit kcore" (the name that stays when another extension has a\n'
     '"kcore").',
     False,
     4,
     {'name': 'kcore',
      'gdb_name': 'toolkit kcore',
      'summary': 'Kernel memory source: segments, release, KASLR',
      'usage_lines': ['kcore [PATH] [--kallsyms PATH] [--all-info] [--json]',
                      'kcore --gdb | --live'],
      'category': 'kernel',
      'examples': ['kcore', 'kcore /var/crash/vmcore', 'kcore --gdb', 'kcore --live --json'],
      'repeats': False,
      'schema': 'kcore.schema.json'}),
    ('command',
     'kprobe-list',
     'gdb_toolkit.kernel.gdb_commands',
     'KprobeList',
     'Every kprobe: live bytes vs kernel flags\n'
     '\n'
     'Usage: kprobe-list [--no-memory] [SOURCES] [--json]\n'
     '\n'
     "Every registered kprobe, one row per probe as in the kernel's own list\n"
     '(/sys/kernel/debug/kprobes/list), joined with the probes found by walking\n'
     'kprobe_table[64] in kernel memory (layouts from BTF): the live bytes at each\n'
     'address (int3, optimized jmp to a detour buffer, ftrace call, disarmed), the\n'
     'original instruction (p->opcode, optinsn.copied_insn, or the ftrace NOP), the\n'
     "handler, and each probe's own event, hit count and BPF programs from its\n"
     'trace_kprobe. "ok" says the bytes agree with the kernel\'s flags. On a dump or a\n'
     'halted kernel everything comes from memory.\n'
     '\n'
     'Examples:\n'
     '  (gdb) kprobe-list\n'
     '  (gdb) kprobe-list --json\n'
     '  (gdb) kprobe-list --kcore /var/crash/vmcore\n'
     '\n'
     'Also "toolkit kprobe-list" (the name that stays when another extension has a\n'
     '"kprobe-list").',
     False,
     4,
     {'name': 'kprobe-list',
      'gdb_name': 'toolkit kprobe-list',
      'summary': 'Every kprobe: live bytes vs kernel flags',
      'usage_lines': ['kprobe-list [--no-memory] [SOURCES] [--json]'],
      'category': 'kernel',
      'examples': ['kprobe-list', 'kprobe-list --json', 'kprobe-list --kcore /var/crash/vmcore'],
      'repeats': False,
      'schema': 'kprobe-list.schema.json'}),
    ('command',
     'kprobe-show',
     'gdb_toolkit.kernel.gdb_commands',
     'KprobeShow',
     'One kprobe: code, struct, detour, BPF\n'
     '\n'
     'Usage: kprobe-show SYMBOL|ADDR|$expr [-n N] [SOURCES] [--json]\n'
     '\n'
     'One kprobe in depth: the first N instructions as they are now and as they were\n'
     '(original bytes from p->opcode / optinsn.copied_insn / the ftrace NOP), every\n'
     'field of each struct kprobe (and of the aggregate) decoded through BTF, the\n'
     "optimized probe's detour buffer or the ftrace trampoline, and for BPF-backed\n"
     "probes the programs attached to that probe's own event and their JIT addresses.\n"
     '--vmlinux adds the bytes the kernel was built with.\n'
     '\n'
     'Examples:\n'
     '  (gdb) kprobe-show do_sys_openat2\n'
     '  (gdb) kprobe-show vfs_write+0x5 -n 3\n'
     '  (gdb) kprobe-show $ksym("vfs_write")+5 --json\n'
     '\n'
     'Also "toolkit kprobe-show" (the name that stays when another extension has a\n'
     '"kprobe-show").',
     False,
     4,
     {'name': 'kprobe-show',
      'gdb_name': 'toolkit kprobe-show',
      'summary': 'One kprobe: code, struct, detour, BPF',
      'usage_lines': ['kprobe-show SYMBOL|ADDR|$expr [-n N] [SOURCES] [--json]'],
      'category': 'kernel',
      'examples': ['kprobe-show do_sys_openat2',
                   'kprobe-show vfs_write+0x5 -n 3',
                   'kprobe-show $ksym("vfs_write")+5 --json'],
      'repeats': False,
      'schema': 'kprobe-show.schema.json'}),
    ('command',
     'kdis',
     'gdb_toolkit.kernel.gdb_commands',
     'Kdis',
     'Disassemble kernel memory; mark probe sites\n'
     '\n'
     'Usage: kdis SYMBOL|ADDR|$expr [N] [--function] [SOURCES] [--json]\n'
     '\n'
     'Shows N instructions (16) of kernel memory with symbolized targets. int3 / brk,\n'
     'optimized-probe jumps and ftrace calls are cross-checked against kprobes/list\n'
     '(not every int3 is a kprobe: the alternatives pad a ret or an indirect jmp with\n'
     'int3). Works with or without a vmlinux in gdb, on the running kernel, a dump or\n'
     "gdb's halted kernel.\n"
     '\n'
     'Examples:\n'
     '  (gdb) kdis do_sys_openat2 8\n'
     '  (gdb) kdis vfs_read --function\n'
     '  (gdb) kdis $ksym("vfs_write")+5 4\n'
     '\n'
     'Also "toolkit kdis" (the name that stays when another extension has a "kdis").',
     False,
     4,
     {'name': 'kdis',
      'gdb_name': 'toolkit kdis',
      'summary': 'Disassemble kernel memory; mark probe sites',
      'usage_lines': ['kdis SYMBOL|ADDR|$expr [N] [--function] [SOURCES] [--json]'],
      'category': 'kernel',
      'examples': ['kdis do_sys_openat2 8',
                   'kdis vfs_read --function',
                   'kdis $ksym("vfs_write")+5 4'],
      'repeats': False,
      'schema': 'kdis.schema.json'}),
    ('command',
     'kx',
     'gdb_toolkit.kernel.gdb_commands',
     'Kx',
     'Dump kernel memory (hex or symbolized words)\n'
     '\n'
     'Usage: kx SYMBOL|ADDR|$expr [LEN] [--words] [SOURCES] [--json]\n'
     '\n'
     'Hex and ASCII of LEN bytes (64; k/M suffixes, at most 1 MiB) of kernel memory,\n'
     'or with --words the little-endian 64-bit values, each with the kernel symbol it\n'
     'points at.\n'
     '\n'
     'Examples:\n'
     '  (gdb) kx linux_banner 128\n'
     '  (gdb) kx kprobe_table 64 --words\n'
     '  (gdb) kx $ksym("vfs_write")+5 8\n'
     '\n'
     'Also "toolkit kx" (the name that stays when another extension has a "kx").',
     False,
     4,
     {'name': 'kx',
      'gdb_name': 'toolkit kx',
      'summary': 'Dump kernel memory (hex or symbolized words)',
      'usage_lines': ['kx SYMBOL|ADDR|$expr [LEN] [--words] [SOURCES] [--json]'],
      'category': 'kernel',
      'examples': ['kx linux_banner 128',
                   'kx kprobe_table 64 --words',
                   'kx $ksym("vfs_write")+5 8'],
      'repeats': False,
      'schema': 'kx.schema.json'}),
    ('command',
     'ksym',
     'gdb_toolkit.kernel.gdb_commands',
     'Ksym',
     'Kernel symbol <-> address, with BTF prototype\n'
     '\n'
     'Usage: ksym NAME|MODULE:NAME|ADDR [--no-btf] [SOURCES] [--json]\n'
     '\n'
     'By name: every symbol with that name (vmlinux and modules), its kallsyms type\n'
     'letter, size (distance to the next symbol) and, from BTF, its C prototype. By\n'
     'address (0x..., SYMBOL+OFF): the symbol containing it and the offset. Needs no\n'
     'kcore on the running kernel; kptr_restrict is reported.\n'
     '\n'
     'Examples:\n'
     '  (gdb) ksym do_sys_openat2\n'
     '  (gdb) ksym 0xffffffff81234567\n'
     '  (gdb) ksym ext4:ext4_file_open\n'
     '\n'
     'Also "toolkit ksym" (the name that stays when another extension has a "ksym").',
     False,
     4,
     {'name': 'ksym',
      'gdb_name': 'toolkit ksym',
      'summary': 'Kernel symbol <-> address, with BTF prototype',
      'usage_lines': ['ksym NAME|MODULE:NAME|ADDR [--no-btf] [SOURCES] [--json]'],
      'category': 'kernel',
      'examples': ['ksym do_sys_openat2', 'ksym 0xffffffff81234567', 'ksym ext4:ext4_file_open'],
      'repeats': False,
      'schema': 'ksym.schema.json'}),
    ('command',
     'ftrace-site',
     'gdb_toolkit.kernel.gdb_commands',
     'FtraceSite',
     "Is FUNC's ftrace site patched, and to what\n"
     '\n'
     'Usage: ftrace-site FUNC [SOURCES] [--json]\n'
     '\n'
     'Reads the first bytes of FUNC: the idle 5-byte NOP, a call to ftrace_caller /\n'
     'ftrace_regs_caller / a trampoline, or a kprobe breakpoint; says who enabled it\n'
     '(tracefs enabled_functions, running kernel only) and whether FUNC is traceable\n'
     'at all (available_filter_functions). arm64: the patchable entry `mov x9, x30;\n'
     'nop` (idle) or `mov x9, x30; bl ftrace_caller` (traced); the site is its call\n'
     "slot at func+4, and a kprobe's `brk #0x4` over func+0 is shown beside it (arm64\n"
     'kprobes never use ftrace).\n'
     '\n'
     'Examples:\n'
     '  (gdb) ftrace-site vfs_read\n'
     '  (gdb) ftrace-site do_sys_openat2 --json\n'
     '\n'
     'Also "toolkit ftrace-site" (the name that stays when another extension has a\n'
     '"ftrace-site").',
     False,
     4,
     {'name': 'ftrace-site',
      'gdb_name': 'toolkit ftrace-site',
      'summary': "Is FUNC's ftrace site patched, and to what",
      'usage_lines': ['ftrace-site FUNC [SOURCES] [--json]'],
      'category': 'kernel',
      'examples': ['ftrace-site vfs_read', 'ftrace-site do_sys_openat2 --json'],
      'repeats': False,
      'schema': 'ftrace-site.schema.json'}),
    ('function',
     'ksym',
     'gdb_toolkit.kernel.gdb_commands',
     'KsymFunction',
     '$ksym("name") -- a kernel symbol\'s address; no vmlinux needed.\n'
     '\n'
     'From /proc/kallsyms, or the dump / halted kernel chosen with `kcore`.  Also\n'
     '"name+0x10", "module:name" and "0xADDR".  The value is an unsigned long long,\n'
     'so $ksym("vfs_write")+5 is an address.',
     False,
     0,
     {'usage': '$ksym("name")', 'summary': "a kernel symbol's address; no vmlinux needed"}),
    ('function',
     'kprobe',
     'gdb_toolkit.kernel.gdb_commands',
     'KprobeFunction',
     '$kprobe(ADDR) -- the kprobe at ADDR, as (struct kprobe *).\n'
     '\n'
     "Typed with gdb's own struct kprobe: from `ktypes` (the kernel's BTF loaded as\n"
     'gdb types; no debug vmlinux needed) or a vmlinux with debug info.  Without\n'
     'either, kprobe-show decodes the same fields through BTF.',
     False,
     0,
     {'usage': '$kprobe(ADDR)', 'summary': 'the kprobe at ADDR, as (struct kprobe *)'}),
    ('command',
     'ktrace',
     'gdb_toolkit.ktrace.gdb_commands',
     'Ktrace',
     'Trace a kernel function; the task lands in $ktask\n'
     '\n'
     'Usage: ktrace FUNC|tracepoint:CAT:NAME [--pid PID | --all [--include-gdb]]\n'
     '         [--ret]\n'
     '       [--args SPEC] [--capture FIELD]... [--stack] [--count N] [--timeout S]\n'
     '         [--run]\n'
     '       [--method kprobe|kfunc|tracepoint] [--no-fallback] [--json]\n'
     '       ktrace --stop\n'
     '\n'
     'Attaches a BPF program to a kernel function (kprobe, or fentry) or a tracepoint\n'
     'and reports each hit: the task, its pid and comm, the values asked for, the\n'
     'return value. The last event sets $ktask (its task_struct), $kretval and\n'
     '$kevents. The programs are assembled by the toolkit and loaded by a root worker\n'
     'process that stays warm for the session (bcc compiles only fentry programs);\n'
     'nothing stays attached after the trace.\n'
     '\n'
     'The attach method is chosen automatically: kprobe/kretprobe, else fentry, else\n'
     'a known fallback (the nearest traceable caller of an inlined function, or a\n'
     'tracepoint on the same path); what was traced and why is reported. --pid\n'
     'defaults to the inferior. --all traces every process except gdb and the worker\n'
     "(they read and write the events' pipe: tracing read paths with them included\n"
     'feeds back into itself); --include-gdb keeps them. --args takes NAME or\n'
     'NAME=EXPR (parameter names from BTF, argN, member paths such as vma->vm_end,\n'
     'tracepoint fields, + and -, integers 16, 0x10, 0o20). --capture reads\n'
     'task_struct members at event time (no /proc/kcore needed). With a live\n'
     'inferior: --run arms, continues, and reports when it stops; without --run the\n'
     'probe stays armed while you continue (ktrace --stop ends it). With no inferior,\n'
     'ktrace waits for --count/--timeout or Ctrl-C. Enter does not repeat ktrace (it\n'
     'would arm again).\n'
     '\n'
     'Examples:\n'
     '  (gdb) ktrace thp_get_unmapped_area --run\n'
     '  (gdb) ktrace acct_stack_growth --ret --args size --run\n'
     '  (gdb) ktrace tracepoint:syscalls:sys_enter_mmap --args len --count 1 --all\n'
     '  (gdb) ktrace vfs_read --all --timeout 5 --json\n'
     '\n'
     'Also "toolkit ktrace" (the name that stays when another extension has a\n'
     '"ktrace").',
     False,
     4,
     {'name': 'ktrace',
      'gdb_name': 'toolkit ktrace',
      'summary': 'Trace a kernel function; the task lands in $ktask',
      'usage_lines': ['ktrace FUNC|tracepoint:CAT:NAME [--pid PID | --all [--include-gdb]] [--ret]',
                      '[--args SPEC] [--capture FIELD]... [--stack] [--count N] [--timeout S] '
                      '[--run]',
                      '[--method kprobe|kfunc|tracepoint] [--no-fallback] [--json]',
                      'ktrace --stop'],
      'category': 'ktrace',
      'examples': ['ktrace thp_get_unmapped_area --run',
                   'ktrace acct_stack_growth --ret --args size --run',
                   'ktrace tracepoint:syscalls:sys_enter_mmap --args len --count 1 --all',
                   'ktrace vfs_read --all --timeout 5 --json'],
      'repeats': False,
      'schema': 'ktrace.schema.json'}),
    ('command',
     'ktask',
     'gdb_toolkit.ktrace.gdb_commands',
     'Ktask',
     'Read a task_struct by pid or address, set $ktask\n'
     '\n'
     'Usage: ktask PID|ADDR|--thread [FIELD-PATH...] [--kcore PATH]\n'
     '         [--kallsyms PATH | --system-map PATH] [--btf PATH] [--json]\n'
     '\n'
     'Finds a task_struct in kernel memory with no debug vmlinux: offsets come from\n'
     "the kernel's BTF, memory from the kernel chosen with `kcore` -- the running one\n"
     '(/proc/kcore), a vmcore (--kcore PATH, or `kcore PATH` first), or the halted\n'
     "kernel behind gdb's `target remote` (QEMU's gdbstub, kgdb); a dump or a halted\n"
     'kernel gives its own symbols and BTF. With a PID it walks init_task.tasks (then\n'
     'each thread group for a thread id); with an address ($ktask, 0xffff...) it\n'
     "reads it directly; with --thread it finds the task of gdb's selected thread\n"
     '(its LWP: each thread has its own task_struct). On the running kernel the\n'
     "task's pid and comm are checked against /proc/PID/comm. FIELD-PATHs are\n"
     'task_struct members as in C: comm, mm->mmap_base, signal->rlim[3].rlim_cur,\n'
     'mm->get_unmapped_area (code pointers are named from kallsyms). Where\n'
     '/proc/kcore is missing use capture mode: ktrace FUNC --capture FIELD.\n'
     '\n'
     'Examples:\n'
     '  (gdb) ktask $ktask signal->rlim[3].rlim_cur mm->get_unmapped_area\n'
     '  (gdb) ktask 1234 comm mm->mmap_base\n'
     '  (gdb) ktask --thread comm stack\n'
     '  (gdb) ktask 1 comm --json\n'
     '\n'
     'Also "toolkit ktask" (the name that stays when another extension has a\n'
     '"ktask").',
     False,
     4,
     {'name': 'ktask',
      'gdb_name': 'toolkit ktask',
      'summary': 'Read a task_struct by pid or address, set $ktask',
      'usage_lines': ['ktask PID|ADDR|--thread [FIELD-PATH...] [--kcore PATH] [--kallsyms PATH | '
                      '--system-map PATH] [--btf PATH] [--json]'],
      'category': 'ktrace',
      'examples': ['ktask $ktask signal->rlim[3].rlim_cur mm->get_unmapped_area',
                   'ktask 1234 comm mm->mmap_base',
                   'ktask --thread comm stack',
                   'ktask 1 comm --json'],
      'repeats': False,
      'schema': 'ktask.schema.json'}),
    ('command',
     'ktypes',
     'gdb_toolkit.ktrace.gdb_commands',
     'Ktypes',
     "Load the kernel's types into gdb from its BTF\n"
     '\n'
     'Usage: ktypes [--force] [--btf PATH | --kcore VMCORE] [--json]\n'
     '\n'
     "Gives gdb a kernel's types with no debug vmlinux: the BTF\n"
     '(/sys/kernel/btf/vmlinux, --btf FILE, or the BTF inside the vmcore or halted\n'
     'kernel chosen with `kcore`) is rendered as C by bpftool, compiled with gcc -g\n'
     'into an object holding types only (no symbol, so no address ever resolves to\n'
     "it), cached by the kernel's build id in ~/.cache/gdb_toolkit/ktypes/\n"
     '(owner-checked; a private per-session directory when that is not usable), and\n'
     'added with add-symbol-file. Then, with /proc/kcore as the target (core-file\n'
     '/proc/kcore), expressions such as ((struct task_struct\n'
     '*)$ktask)->signal->rlim[3].rlim_cur work. If gdb has kernel debug info already\n'
     '(a vmlinux), that is used instead.\n'
     '\n'
     'Examples:\n'
     '  (gdb) ktypes\n'
     '  (gdb) ktypes --btf /sys/kernel/btf/vmlinux --force\n'
     '  (gdb) p ((struct task_struct *)$ktask)->signal->rlim[3].rlim_cur\n'
     '\n'
     'Also "toolkit ktypes" (the name that stays when another extension has a\n'
     '"ktypes").',
     False,
     4,
     {'name': 'ktypes',
      'gdb_name': 'toolkit ktypes',
      'summary': "Load the kernel's types into gdb from its BTF",
      'usage_lines': ['ktypes [--force] [--btf PATH | --kcore VMCORE] [--json]'],
      'category': 'ktrace',
      'examples': ['ktypes',
                   'ktypes --btf /sys/kernel/btf/vmlinux --force',
                   'p ((struct task_struct *)$ktask)->signal->rlim[3].rlim_cur'],
      'repeats': False,
      'schema': 'ktypes.schema.json'}),
    ('command',
     'got',
     'gdb_toolkit.plt.gdb_commands',
     'Got',
     'GOT slots, their state and binding now\n'
     '\n'
     'Usage: got [REGEX] [--all-objects] [--object PATH] [--preview] [--audit]\n'
     '         [--json]\n'
     '       got [REGEX] --diff [FILE] [--all-objects] [--json]\n'
     '\n'
     'One row per GOT slot of the executable (with --all-objects, of every loaded\n'
     'object, every dlmopen namespace included; --object PATH: those whose path\n'
     'contains PATH): slot, symbol with version (memcpy@GLIBC_2.14, C++ names\n'
     'demangled), relocation kind, current value and state: unresolved (still the\n'
     'lazy stub), resolved (bound on the first call), bound-at-load (-z now, dlopen\n'
     'RTLD_NOW, LD_BIND_NOW, GLOB_DAT, IRELATIVE, TLS), null (absent weak symbol).\n'
     'The binding mode of each object is read from the process (GOT[1]/GOT[2], its\n'
     'environment), not from the file. TLS slots name their variable and module.\n'
     'REGEX matches names with or without @VERSION. x86_64, i386, aarch64 and arm;\n'
     'live, core, remote, or the file before run.\n'
     '\n'
     '--preview  the first instruction at each target.\n'
     "--audit    what the dynamic linker's lookup scope SHOULD bind each slot to\n"
     '           (search order, versions, preloads, interposition) against what it\n'
     '           holds: overwritten (hijacked) slots are flagged.\n'
     "--diff     what changed since the previous 'got' of this session, or since a\n"
     "           report saved with 'pipe got --json | cat > FILE' (e.g. a core).\n"
     '\n'
     'Examples:\n'
     '  (gdb) got\n'
     "  (gdb) got '^puts$' --all-objects\n"
     '  (gdb) got --object libc --audit\n'
     '  (gdb) got --diff\n'
     '  (gdb) got --json\n'
     '\n'
     'Also "toolkit got" (the name that stays when another extension has a "got").',
     False,
     4,
     {'name': 'got',
      'gdb_name': 'toolkit got',
      'summary': 'GOT slots, their state and binding now',
      'usage_lines': ['got [REGEX] [--all-objects] [--object PATH] [--preview] [--audit] [--json]',
                      'got [REGEX] --diff [FILE] [--all-objects] [--json]'],
      'category': 'plt',
      'examples': ['got',
                   "got '^puts$' --all-objects",
                   'got --object libc --audit',
                   'got --diff',
                   'got --json'],
      'repeats': False,
      'schema': 'got.schema.json'}),
    ('command',
     'plt',
     'gdb_toolkit.plt.gdb_commands',
     'Plt',
     'PLT stubs, the GOT slot each uses, disassembly\n'
     '\n'
     'Usage: plt [REGEX] [--all-objects] [--object PATH] [--json]\n'
     '\n'
     'Decodes .plt, .plt.sec (endbr64 + bnd jmp, -fcf-protection), .plt.got and the\n'
     'static .plt of IRELATIVE stubs with capstone: x86_64 jmp *GOT(%rip) and push N,\n'
     'i386 jmp *GOT(%ebx) / jmp *ABS, aarch64 adrp x16 / ldr x17 / br x17 (BTI and\n'
     'PAC PLTs too), arm add ip, pc / ldr pc, [ip]. ".plt[0]" is the resolver\n'
     'trampoline; "lazy" entries are the first-call halves of an IBT PLT. On a live\n'
     'process or core the current state of each slot is shown too.\n'
     '\n'
     'Examples:\n'
     '  (gdb) plt\n'
     '  (gdb) plt puts\n'
     '  (gdb) plt --object libfoo\n'
     '\n'
     'Also "toolkit plt" (the name that stays when another extension has a "plt").',
     False,
     4,
     {'name': 'plt',
      'gdb_name': 'toolkit plt',
      'summary': 'PLT stubs, the GOT slot each uses, disassembly',
      'usage_lines': ['plt [REGEX] [--all-objects] [--object PATH] [--json]'],
      'category': 'plt',
      'examples': ['plt', 'plt puts', 'plt --object libfoo'],
      'repeats': False,
      'schema': 'plt.schema.json'}),
    ('command',
     'plt-walk',
     'gdb_toolkit.plt.gdb_commands',
     'PltWalk',
     'One PLT call, hop by hop; --live watches ld.so\n'
     '\n'
     'Usage: plt-walk SYMBOL [--object PATH] [--live] [--json]\n'
     '\n'
     'Shows each hop with its address and disassembly, from a call of SYMBOL in the\n'
     'current function (or the first call found in .text) through the PLT stub and\n'
     'the GOT slot to the target, and explains the first call (push of the relocation\n'
     'index, .plt[0], GOT[1] = link_map, GOT[2] = resolver) versus later calls -- or,\n'
     'when the process bound the object at load (-z now, LD_BIND_NOW, dlopen\n'
     'RTLD_NOW), says so. When several objects or versions import SYMBOL, it says\n'
     'which slot it walks and why and lists the others (pick one with SYMBOL@VERSION\n'
     'or --object). Data symbols are refused.\n'
     '\n'
     '--live (a running process, slot still unresolved): a write watchpoint on the\n'
     'slot, continue until ld.so writes it; the writer (e.g. _dl_fixup) with its\n'
     'backtrace, old -> new value and target are reported, the watchpoint is deleted,\n'
     'your own breakpoints and watchpoints are left exactly as they were, and the\n'
     'program stays stopped right there.\n'
     '\n'
     'Examples:\n'
     '  (gdb) plt-walk puts\n'
     '  (gdb) plt-walk puts --live\n'
     '  (gdb) plt-walk foo@VER_2 --object libfoo\n'
     '\n'
     'Also "toolkit plt-walk" (the name that stays when another extension has a\n'
     '"plt-walk").',
     False,
     4,
     {'name': 'plt-walk',
      'gdb_name': 'toolkit plt-walk',
      'summary': 'One PLT call, hop by hop; --live watches ld.so',
      'usage_lines': ['plt-walk SYMBOL [--object PATH] [--live] [--json]'],
      'category': 'plt',
      'examples': ['plt-walk puts', 'plt-walk puts --live', 'plt-walk foo@VER_2 --object libfoo'],
      'repeats': False,
      'schema': 'plt-walk.schema.json'}),
    ('command',
     'stack-diagnose',
     'gdb_toolkit.stack.gdb_commands',
     'StackDiagnose',
     'Why the stack overflowed, and the fix\n'
     '\n'
     'Usage: stack-diagnose [--thread N | --all-threads] [--rlimit KIB] [--kernel]\n'
     '         [--json]\n'
     '\n'
     "After a SIGSEGV/SIGBUS (live process or core file) -- or after the program's\n"
     "own handler ran for it (it aborted, Rust's overflow handler, gdb -p inside the\n"
     "handler: the original fault is read from the kernel's signal frame) -- it reads\n"
     "the fault address, sp/pc, the thread's stack mapping and what lies below it,\n"
     'RLIMIT_STACK and RLIMIT_AS, the guard gap, the address-space layout the limit\n'
     'at exec decided, and a bounded walk of the innermost frames, and gives one\n'
     'verdict: growth refused by RLIMIT_STACK or RLIMIT_AS, by the guard gap of a\n'
     'mapping below, by a PROT_NONE mapping in the way, a frame jumping over the gap,\n'
     "a thread or alternate signal stack overflowing (into another thread's stack), a\n"
     'corrupt stack pointer, or not a stack fault at all. It says who asked (the huge\n'
     'frame and the instruction that moved sp, a recursion and its live depth, a\n'
     'probing loop) and a fix that works when re-run (ulimit -s,\n'
     'pthread_attr_setstacksize, the sigaltstack size, or the heap). At any other\n'
     "stop it is a stack-health report; a Go program gets the Go runtime's view.\n"
     '\n'
     '--rlimit KIB   the RLIMIT_STACK the program ran with (a core does not record\n'
     '               it): KiB as for ulimit -s, or 8M / 1G / unlimited.\n'
     '--kernel       re-runs the program -- the same argv, working directory and\n'
     '               environment minus loader and interpreter variables (LD_PRELOAD,\n'
     "               LD_LIBRARY_PATH, GCONV_PATH, ...) -- as the process's owner\n"
     "               (root drops to the owner's uid, gid and groups first; a program\n"
     '               someone else could have replaced is not run as root) under a bcc\n'
     "               probe on the kernel's stack-growth check, and shows what the\n"
     '               kernel saw. Needs root, bcc and kprobes.\n'
     '\n'
     'Examples:\n'
     '  (gdb) run 1920 1080\n'
     '  (gdb) stack-diagnose\n'
     '  (gdb) stack-diagnose --all-threads --json\n'
     '  (gdb) stack-diagnose --rlimit 4096\n'
     '\n'
     'Also "toolkit stack-diagnose" (the name that stays when another extension has a\n'
     '"stack-diagnose").',
     False,
     4,
     {'name': 'stack-diagnose',
      'gdb_name': 'toolkit stack-diagnose',
      'summary': 'Why the stack overflowed, and the fix',
      'usage_lines': ['stack-diagnose [--thread N | --all-threads] [--rlimit KIB] [--kernel] '
                      '[--json]'],
      'category': 'stack',
      'examples': ['run 1920 1080',
                   'stack-diagnose',
                   'stack-diagnose --all-threads --json',
                   'stack-diagnose --rlimit 4096'],
      'repeats': False,
      'schema': 'stack-diagnose.schema.json'}),
    ('command',
     'vg-start',
     'gdb_toolkit.valgrind.gdb_commands',
     'VgStart',
     'Start a program under memcheck and connect\n'
     '\n'
     'Usage: vg-start [--main] [--stdin FILE] [--stdout FILE] [--tty DEV]\n'
     '         [--log FILE] [--timeout SEC] [--json] PROGRAM [ARGS...]\n'
     '         [-- VALGRIND-OPTIONS]\n'
     '\n'
     'Runs valgrind --tool=memcheck --vgdb=yes --vgdb-error=0 [VALGRIND-OPTIONS]\n'
     'PROGRAM ARGS. Options before PROGRAM are vg-start\'s ("--" ends them, for a\n'
     'PROGRAM named "-x"); every word after PROGRAM is its argument, "-p 8080" and\n'
     '"--json" too, up to "--", after which come valgrind\'s options (--json there is\n'
     "vg-start's: valgrind has none). It waits for its vgdb FIFO, loads PROGRAM's\n"
     'symbols and connects with "target remote | vgdb --pid=N". The program stops at\n'
     'its first instruction (--main: at main). --vgdb=full, --vgdb-error=N and\n'
     '--vgdb-prefix=P after "--" are honoured. Its stdout/stderr go to gdb\'s terminal\n'
     '(or --stdout FILE / --tty DEV); its stdin is /dev/null (or --stdin FILE /\n'
     "--tty). valgrind's own messages go to --log FILE (default: a private directory\n"
     'removed when gdb quits). Memcheck errors stop the program; vg-start then says\n'
     'which. When gdb quits, the valgrind it started is killed, --trace-children ones\n'
     'too.\n'
     '\n'
     'Examples:\n'
     '  (gdb) vg-start --main ./memleakloop\n'
     '  (gdb) vg-start ./server 8080 -- --leak-check=full --track-origins=yes\n'
     '\n'
     'Also "toolkit vg-start" (the name that stays when another extension has a\n'
     '"vg-start").',
     False,
     4,
     {'name': 'vg-start',
      'gdb_name': 'toolkit vg-start',
      'summary': 'Start a program under memcheck and connect',
      'usage_lines': ['vg-start [--main] [--stdin FILE] [--stdout FILE] [--tty DEV] [--log FILE] '
                      '[--timeout SEC] [--json] PROGRAM [ARGS...] [-- VALGRIND-OPTIONS]'],
      'category': 'valgrind',
      'examples': ['vg-start --main ./memleakloop',
                   'vg-start ./server 8080 -- --leak-check=full --track-origins=yes'],
      'repeats': False,
      'schema': 'vg-start.schema.json'}),
    ('command',
     'vg-attach',
     'gdb_toolkit.valgrind.gdb_commands',
     'VgAttach',
     'Connect to a running valgrind, or list them\n'
     '\n'
     'Usage: vg-attach [PID] [--vgdb-prefix PREFIX] [--reconnect] [--json]\n'
     '\n'
     'Live valgrind gdbservers are found from their vgdb FIFOs\n'
     "($TMPDIR/vgdb-pipe-from-vgdb-to-PID-*, or --vgdb-prefix's); FIFOs left by\n"
     'killed processes are ignored. With one live process it is chosen; with several,\n'
     "the list is printed and you choose with vg-attach PID. PROGRAM's symbols are\n"
     "loaded from the process's command line when gdb has no file. --reconnect drops\n"
     'the current connection and makes a new one to the same valgrind: the way out\n'
     'when the connection is out of step (valgrind lets the program run between the\n'
     'two connections). A process started with another TMPDIR is found from its own\n'
     'environment; one waiting at an error keeps its stop; a PID that is not\n'
     'attachable is told why (not valgrind, --vgdb=no, gone).\n'
     '\n'
     'Examples:\n'
     '  (gdb) vg-attach\n'
     '  (gdb) vg-attach 12345\n'
     '\n'
     'Also "toolkit vg-attach" (the name that stays when another extension has a\n'
     '"vg-attach").',
     False,
     4,
     {'name': 'vg-attach',
      'gdb_name': 'toolkit vg-attach',
      'summary': 'Connect to a running valgrind, or list them',
      'usage_lines': ['vg-attach [PID] [--vgdb-prefix PREFIX] [--reconnect] [--json]'],
      'category': 'valgrind',
      'examples': ['vg-attach', 'vg-attach 12345'],
      'repeats': False,
      'schema': 'vg-attach.schema.json'}),
    ('command',
     'vg-leaks',
     'gdb_toolkit.valgrind.gdb_commands',
     'VgLeaks',
     'Leak check by allocation site, and its growth\n'
     '\n'
     'Usage: vg-leaks [full|summary] [--kinds K1,K2] [--delta increased|changed]\n'
     '         [--min-bytes N] [--top N] [--depth N] [--group-by N] [--json]\n'
     '       vg-leaks --history [--kinds K] [--top N] [--export FILE] [--plot FILE]\n'
     '         [--json]\n'
     '\n'
     'Runs "monitor leak_check" on the connected valgrind, parses every loss record\n'
     '(bytes direct+indirect with deltas, blocks, kind, record number, allocation\n'
     'stack) and the LEAK SUMMARY, and prints the records largest first with their\n'
     "allocation site: the first frame in the program's own code (decided by the\n"
     'object file the code lives in: the allocator, libc, libstdc++ and other system\n'
     'libraries are skipped). --depth N shows N-1 callers too; --group-by N sums the\n'
     'records by the frame N levels up from the site. Kinds: definite, indirect,\n'
     'possible, reachable (default all). --delta shows only records that grew\n'
     '(increased) or changed since the previous leak search. Every complete search is\n'
     "kept as a snapshot of the session: --history shows each site's series, growth\n"
     'per snapshot and per second, and a sparkline; --export writes it as CSV (.csv)\n'
     'or JSON lines; --plot draws the top growing sites (.svg or .png). Ctrl-C during\n'
     'a long search takes effect when valgrind has sent the whole reply (the\n'
     'connection stays in step).\n'
     '\n'
     'Examples:\n'
     '  (gdb) vg-leaks\n'
     '  (gdb) vg-leaks --kinds definite --top 5 --depth 3\n'
     '  (gdb) vg-leaks --delta increased\n'
     '  (gdb) vg-leaks --history --plot leaks.svg\n'
     '\n'
     'Also "toolkit vg-leaks" (the name that stays when another extension has a\n'
     '"vg-leaks").',
     False,
     4,
     {'name': 'vg-leaks',
      'gdb_name': 'toolkit vg-leaks',
      'summary': 'Leak check by allocation site, and its growth',
      'usage_lines': ['vg-leaks [full|summary] [--kinds K1,K2] [--delta increased|changed] '
                      '[--min-bytes N] [--top N] [--depth N] [--group-by N] [--json]',
                      'vg-leaks --history [--kinds K] [--top N] [--export FILE] [--plot FILE] '
                      '[--json]'],
      'category': 'valgrind',
      'examples': ['vg-leaks',
                   'vg-leaks --kinds definite --top 5 --depth 3',
                   'vg-leaks --delta increased',
                   'vg-leaks --history --plot leaks.svg'],
      'repeats': False,
      'schema': 'vg-leaks.schema.json'}),
    ('command',
     'vg-watch',
     'gdb_toolkit.valgrind.gdb_commands',
     'VgWatch',
     'Leak snapshots every N seconds until Ctrl-C\n'
     '\n'
     'Usage: vg-watch SECONDS [--count N] [--top N] [--json]\n'
     '\n'
     'Takes a leak snapshot now, lets the program run, and takes one every SECONDS (a\n'
     'full leak search, kept as a snapshot like vg-leaks), printing one line each,\n'
     'until Ctrl-C or --count snapshots; then prints the growth table of\n'
     "'vg-leaks --history'. While it watches, gdb's connection is released and each\n"
     'snapshot is asked through a standalone vgdb: the program runs freely\n'
     '(breakpoints do not stop it, gdb prints no stops); at the end gdb connects\n'
     'again and the program is stopped wherever it is. The watch also ends when the\n'
     'program exits or stops on a memcheck error (it then waits for gdb).\n'
     '\n'
     'Examples:\n'
     '  (gdb) vg-watch 10\n'
     '  (gdb) vg-watch 2 --count 5\n'
     '\n'
     'Also "toolkit vg-watch" (the name that stays when another extension has a\n'
     '"vg-watch").',
     False,
     4,
     {'name': 'vg-watch',
      'gdb_name': 'toolkit vg-watch',
      'summary': 'Leak snapshots every N seconds until Ctrl-C',
      'usage_lines': ['vg-watch SECONDS [--count N] [--top N] [--json]'],
      'category': 'valgrind',
      'examples': ['vg-watch 10', 'vg-watch 2 --count 5'],
      'repeats': False,
      'schema': 'vg-watch.schema.json'}),
    ('command',
     'vg-who',
     'gdb_toolkit.valgrind.gdb_commands',
     'VgWho',
     'Who points at an address (who_points_at)\n'
     '\n'
     'Usage: vg-who ADDR [LEN] [--json]\n'
     '\n'
     'ADDR and LEN are gdb expressions (g_buf, &g_holder, sizeof(buf)). Each pointer\n'
     'found is listed with its own address and what holds it: a global data symbol, a\n'
     'stack frame of a thread, a register, or a heap block with its allocation stack.\n'
     'With LEN > 1 interior pointers are shown too.\n'
     '\n'
     'Examples:\n'
     '  (gdb) vg-who g_buf\n'
     '  (gdb) vg-who g_buf 64\n'
     '\n'
     'Also "toolkit vg-who" (the name that stays when another extension has a\n'
     '"vg-who").',
     False,
     4,
     {'name': 'vg-who',
      'gdb_name': 'toolkit vg-who',
      'summary': 'Who points at an address (who_points_at)',
      'usage_lines': ['vg-who ADDR [LEN] [--json]'],
      'category': 'valgrind',
      'examples': ['vg-who g_buf', 'vg-who g_buf 64'],
      'repeats': False,
      'schema': 'vg-who.schema.json'}),
    ('command',
     'vg-block',
     'gdb_toolkit.valgrind.gdb_commands',
     'VgBlock',
     'Blocks of a loss record, or the block at ADDR\n'
     '\n'
     'Usage: vg-block RECORD|ADDR [--limit N] [--json]\n'
     '\n'
     'A plain decimal number is a loss record number from the last leak search\n'
     "(vg-leaks): its blocks, as valgrind's tree (blocks reached through another one\n"
     'are indented under it). Anything else is a gdb expression for an address:\n'
     "valgrind's 'v.info location' says which heap block holds it (start, size,\n"
     'allocation stack); the loss record of the last search with that allocation\n'
     'stack is shown with its blocks. vg-block never runs a leak search itself, so\n'
     "'vg-leaks --delta' keeps its baseline. valgrind lists the first N blocks\n"
     "(--limit, default 50; 0: all -- a server's record of 100,000 blocks is 2.4 MB\n"
     'of monitor text and seconds to transfer).\n'
     '\n'
     'Examples:\n'
     '  (gdb) vg-block 3\n'
     '  (gdb) vg-block g_psz1[0]\n'
     '  (gdb) vg-block 5 --limit 0\n'
     '\n'
     'Also "toolkit vg-block" (the name that stays when another extension has a\n'
     '"vg-block").',
     False,
     4,
     {'name': 'vg-block',
      'gdb_name': 'toolkit vg-block',
      'summary': 'Blocks of a loss record, or the block at ADDR',
      'usage_lines': ['vg-block RECORD|ADDR [--limit N] [--json]'],
      'category': 'valgrind',
      'examples': ['vg-block 3', 'vg-block g_psz1[0]', 'vg-block 5 --limit 0'],
      'repeats': False,
      'schema': 'vg-block.schema.json'}),
    ('command',
     'vg-vbits',
     'gdb_toolkit.valgrind.gdb_commands',
     'VgVbits',
     "Memcheck's validity bits as a table\n"
     '\n'
     'Usage: vg-vbits ADDR [LEN] [--json]\n'
     '\n'
     'Runs "monitor get_vbits ADDR LEN" and reads the values through gdb, and shows,\n'
     '8 bytes per row, the values, the validity bits (00 = defined, ff = undefined,\n'
     '__ = unaddressable) and a mark per byte: D defined, U undefined, u partly\n'
     'defined, - unaddressable. ADDR and LEN are gdb expressions. Read-only: nothing\n'
     'in the target is changed.\n'
     '\n'
     'Examples:\n'
     '  (gdb) vg-vbits g_buf 24\n'
     '  (gdb) vg-vbits &local sizeof(local)\n'
     '\n'
     'Also "toolkit vg-vbits" (the name that stays when another extension has a\n'
     '"vg-vbits").',
     False,
     4,
     {'name': 'vg-vbits',
      'gdb_name': 'toolkit vg-vbits',
      'summary': "Memcheck's validity bits as a table",
      'usage_lines': ['vg-vbits ADDR [LEN] [--json]'],
      'category': 'valgrind',
      'examples': ['vg-vbits g_buf 24', 'vg-vbits &local sizeof(local)'],
      'repeats': False,
      'schema': 'vg-vbits.schema.json'}),
    ('command',
     'vg-check',
     'gdb_toolkit.valgrind.gdb_commands',
     'VgCheck',
     'Are these bytes addressable or defined?\n'
     '\n'
     'Usage: vg-check ADDR LEN [addressable|defined] [--json]\n'
     '\n'
     'Says whether the range passes, the first bad byte, and what ADDR is (heap block\n'
     'with its allocation stack, global, stack frame). ADDR and LEN are gdb\n'
     'expressions; a function name is its address (vg-check main 4). Default check:\n'
     "addressable (valgrind's default).\n"
     '\n'
     'Examples:\n'
     '  (gdb) vg-check g_buf 64 defined\n'
     '  (gdb) vg-check &g_static sizeof(g_static) defined\n'
     '\n'
     'Also "toolkit vg-check" (the name that stays when another extension has a\n'
     '"vg-check").',
     False,
     4,
     {'name': 'vg-check',
      'gdb_name': 'toolkit vg-check',
      'summary': 'Are these bytes addressable or defined?',
      'usage_lines': ['vg-check ADDR LEN [addressable|defined] [--json]'],
      'category': 'valgrind',
      'examples': ['vg-check g_buf 64 defined', 'vg-check &g_static sizeof(g_static) defined'],
      'repeats': False,
      'schema': 'vg-check.schema.json'}),
    ('command',
     'vg-errors',
     'gdb_toolkit.valgrind.gdb_commands',
     'VgErrors',
     'The memcheck errors found so far\n'
     '\n'
     'Usage: vg-errors [--top N] [--json]\n'
     '\n'
     'Each error with its own stack, where the block was freed and allocated (use\n'
     'after free, double free) and, under --track-origins=yes, where the\n'
     'uninitialised value came from -- each kept apart (helgrind/drd: their further\n'
     "stacks too). Also names forked or exec'd children of this valgrind that wait\n"
     'for a debugger (--vgdb-error is inherited), read from /proc without resuming\n'
     'them. The error contexts valgrind lists (with -s or -v) are shown most frequent\n'
     'first, the first N (--top, default 20; 0: all; --json has all); it says when\n'
     'valgrind has stopped recording errors at its --error-limit.\n'
     '\n'
     'Examples:\n'
     '  (gdb) vg-errors\n'
     '  (gdb) vg-errors --top 0\n'
     '\n'
     'Also "toolkit vg-errors" (the name that stays when another extension has a\n'
     '"vg-errors").',
     False,
     4,
     {'name': 'vg-errors',
      'gdb_name': 'toolkit vg-errors',
      'summary': 'The memcheck errors found so far',
      'usage_lines': ['vg-errors [--top N] [--json]'],
      'category': 'valgrind',
      'examples': ['vg-errors', 'vg-errors --top 0'],
      'repeats': False,
      'schema': 'vg-errors.schema.json'}),
)

VARIABLES = {'$ktask': 'task_struct of the last ktrace event, or the task ktask found',
 '$kretval': 'return value of the last ktrace --ret event',
 '$kevents': 'number of events the last ktrace collected'}
