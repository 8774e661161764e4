/* pivot MODE: load the stack pointer with a bad value, then use the stack -- the shapes of a
 * corrupt sp (a stack pivot, a bad longjmp, a smashed saved frame pointer).
 *   heap       sp into a malloc'd block (the return pops junk: a jump to 0)
 *   low        sp = 0x10 (the NULL page)
 *   libc       sp into libc's code (a read-only mapping)
 *   below200m  sp 200 MiB below [stack] (past the libraries under gdb)
 *   below2m    sp 2 MiB below [stack]: the stack grows to it; the return pops 0
 *   noncanon   sp = 0x8000000000001000 (x86_64: #SS, SIGBUS with SI_KERNEL)
 *   ssdata     (x86_64) a load through a non-canonical rbp: #SS with a sane sp
 * Prints the new sp and the [stack] range it read from /proc/self/maps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void pivot(unsigned long sp) {
#if defined(__x86_64__)
    __asm__ volatile("mov %0, %%rsp\n\tpush %%rax\n\tpop %%rax\n\tret" :: "r"(sp) : "memory");
#elif defined(__aarch64__)
    __asm__ volatile("mov sp, %0\n\tstr x0, [sp, #-16]!\n\tldr x30, [sp], #16\n\tret"
                     :: "r"(sp) : "memory", "x30");
#endif
}

__attribute__((noinline)) long ss_load(void) {
#if defined(__x86_64__)
    long v;
    __asm__ volatile("push %%rbp\n\tmovabs $0x8000000000000000, %%rbp\n\tmov (%%rbp), %0\n\tpop %%rbp"
                     : "=r"(v) :: "memory");
    return v;
#else
    return 0;
#endif
}

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "low";
    unsigned long lo = 0, hi = 0, sp = 0x10;
    char line[512];
    FILE *f = fopen("/proc/self/maps", "r");
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "[stack]"))
            sscanf(line, "%lx-%lx", &lo, &hi);
    if (f)
        fclose(f);
    if (!strcmp(m, "heap"))
        sp = ((unsigned long)malloc(256) + 128) & ~15UL;
    else if (!strcmp(m, "libc"))
        sp = ((unsigned long)&printf + 256) & ~15UL;
    else if (!strcmp(m, "below200m"))
        sp = lo - (200UL << 20);
    else if (!strcmp(m, "below2m"))
        sp = lo - (2UL << 20) - 4096;
    else if (!strcmp(m, "noncanon"))
        sp = 0x8000000000001000UL;
    printf("new_sp=%#lx stack=%lx-%lx\n", sp, lo, hi);
    fflush(stdout);
    if (!strcmp(m, "ssdata"))
        return (int)ss_load();
    pivot(sp);
    return 0;
}
