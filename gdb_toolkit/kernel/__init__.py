"""Kernel inspection through /proc/kcore, kallsyms and BTF: kprobes, ftrace sites, kernel memory."""
