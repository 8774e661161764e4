/* A library that takes puts's address (a GLOB_DAT slot for puts).  With canon_main.c:
 *   gcc -shared -fPIC -o libcanon.so canon_lib.c
 *   gcc -no-pie -fno-pic -Wl,-z,lazy -o canon_main canon_main.c -L. -lcanon -Wl,-rpath,$PWD
 * canon_main, a non-PIE program that takes &puts too, exports puts as an undefined symbol
 * whose value is its PLT entry (its canonical PLT entry): ld.so binds this library's
 * GLOB_DAT there, so both see the same address ('got --object libcanon --audit'). */
#include <stdio.h>

void *lib_addr_puts(void) { return (void *)&puts; }
