/* See canon_lib.c: a non-PIE program whose &puts is its own PLT entry. */
#include <stdio.h>

void *lib_addr_puts(void);

__attribute__((noinline)) void checkpoint(void) { __asm__ volatile("" ::: "memory"); }

int main(void)
{
    void *mine = (void *)&puts;
    printf("mine=%p lib=%p\n", mine, lib_addr_puts());
    fflush(stdout);
    checkpoint();
    return 0;
}
