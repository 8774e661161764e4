"""got, plt, plt-walk: how a program's calls into shared libraries are bound (PLT stubs, GOT slots, the
dynamic linker's link map), from the ELF files and the live process."""
