/* guard_gap: map a page just below the main stack (MAP_FIXED_NOREPLACE),
 * then grow the stack towards it.  The kernel keeps stack_guard_gap (default 1 MiB)
 * free above any accessible mapping below the stack, so growth is refused long before
 * RLIMIT_STACK is reached.
 *
 *   ./guard_gap [DISTANCE [BUF [none]]]  page placed DISTANCE bytes (default 512 KiB) below
 *                                  [stack]; BUF (default 256 KiB) is then put on the stack;
 *                                  "none" maps it PROT_NONE (the gap then does not apply)
 * Prints the [stack] start and the mapping it placed.
 */
#define _GNU_SOURCE
#include <alloca.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

__attribute__((noinline)) static int grow(size_t n) {
    char *p = alloca(n);
    memset(p, 3, n);
    return p[n / 2];
}

int main(int argc, char **argv) {
    unsigned long lo = 0, hi = 0, distance = argc > 1 ? strtoul(argv[1], NULL, 0) : (512 << 10);
    size_t buf = argc > 2 ? strtoul(argv[2], NULL, 0) : (256 << 10);
    char line[512];
    FILE *f = fopen("/proc/self/maps", "r");
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "[stack]"))
            sscanf(line, "%lx-%lx", &lo, &hi);
    if (f)
        fclose(f);
    unsigned long end = (lo - distance) & ~4095UL;
    int prot = (argc > 3 && !strcmp(argv[3], "none")) ? PROT_NONE : PROT_READ;
    void *m = mmap((void *)(end - 4096), 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m == MAP_FAILED || (unsigned long)m != end - 4096) {
        perror("mmap");
        return 2;
    }
    printf("stack=%lx-%lx mapping=%lx-%lx\n", lo, hi, end - 4096, end);
    fflush(stdout);
    printf("ok %d\n", grow(buf));
    return 0;
}
