"""Pure helpers shared by every domain: errors, argument parsing, rendering,
lazy dependencies, disassembly, /proc readers.  Nothing here imports gdb."""
