/* recurse: a recursion N levels deep (default: until the stack runs out).
 * `depth` is the program's own count of levels, readable in gdb with `print depth`.
 * Each frame is about 80 bytes at -O0, so 8 MiB holds roughly 100 000 of them.
 */
#include <stdio.h>
#include <stdlib.h>

volatile long depth;
long limit = -1;

long recurse(long n) {
    volatile char pad[48];
    pad[0] = (char)n;
    depth = n;
    if (n == limit)
        return 0;
    return recurse(n + 1) + pad[0];
}

int main(int argc, char **argv) {
    if (argc > 1)
        limit = atol(argv[1]);
    printf("limit=%ld\n", limit);
    fflush(stdout);
    long r = recurse(1);
    printf("ok depth=%ld r=%ld\n", depth, r);
    return 0;
}
