/* alloca_huge: one frame asks for N bytes of stack at run time (alloca), then fills it.
 *
 *   ./alloca_huge 1048576     1 MiB: fits under the default 8 MiB limit
 *   ./alloca_huge 33554432    32 MiB: SIGSEGV (memset faults, big() is the culprit)
 * Build with and without -fstack-clash-protection to see the probing loop fault instead.
 * Prints the request and the address of a local in main (the stack top seen by the program).
 */
#include <alloca.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) int big(size_t n) {
    char *p = alloca(n);
    memset(p, 1, n);
    return p[n / 2];
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 0) : (1u << 20);
    int here;
    printf("request=%zu main_local=%p\n", n, (void *)&here);
    fflush(stdout);
    int r = big(n);
    printf("ok %d\n", r);
    return 0;
}
