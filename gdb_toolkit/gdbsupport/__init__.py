"""The thin gdb layer shared by all domains: the command base class, facts
gathered from gdb, and command registration.  Only code under gdbsupport/ and
the domains' ``gdb_commands.py`` files may import gdb."""
