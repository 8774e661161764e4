/* recurse_helper: an unbounded recursion whose every level calls snprintf and malloc, so the
 * stack runs out deep inside a libc helper, several frames above the recursion.
 * `depth` is the program's own count of levels (`print depth` in gdb).
 */
#include <stdio.h>
#include <stdlib.h>

volatile long depth;

long rec(long n) {
    char buf[64];
    depth = n;
    snprintf(buf, sizeof buf, "%ld %f %s", n, n * 0.5, "level");
    char *p = malloc(16 + n % 7);
    long r = rec(n + 1) + buf[0] + (long)p[0];
    free(p);
    return r;
}

int main(void) {
    return (int)rec(1);
}
