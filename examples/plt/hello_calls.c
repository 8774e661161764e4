/* Three imports, used for the small-table benchmark and for -fno-plt / IBT / static /
 * aarch64 builds:  gcc -Wl,-z,lazy -o hello_calls hello_calls.c */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

__attribute__((noinline)) void checkpoint(void) { __asm__ volatile("" ::: "memory"); }

int main(int argc, char **argv)
{
    char buf[32];
    memcpy(buf, "hi", 3);
    puts(buf);
    checkpoint();
    return atoi(argc > 1 ? argv[1] : "0");   /* atoi: still unresolved at checkpoint */
}
