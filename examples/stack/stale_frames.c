/* stale_frames FIRST HOLE: a first recursion FIRST levels deep returns; a big untouched
 * alloca (HOLE bytes) then keeps its stale frames on the stack; a second, unbounded
 * recursion overflows from below it.  `depth` is the second recursion's own count.
 */
#include <alloca.h>
#include <stdio.h>
#include <stdlib.h>

volatile long depth;

long rec(long n, long limit) {
    volatile char pad[48];
    pad[0] = (char)n;
    depth = n;
    if (n == limit)
        return 0;
    return rec(n + 1, limit) + pad[0];
}

__attribute__((noinline)) long second(size_t hole) {
    char *p = alloca(hole);
    p[0] = 1;
    return rec(1, -1) + p[0];
}

int main(int argc, char **argv) {
    long first = atol(argv[1]);
    size_t hole = strtoul(argv[2], 0, 0);
    rec(1, first);
    printf("first=%ld\n", depth);
    fflush(stdout);
    return (int)second(hole);
}
