"""ktrace: live kernel tracing with bcc in a worker process, correlated to the
inferior's task, plus typed kernel access (ktask, ktypes) without a debug vmlinux."""
