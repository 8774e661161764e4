/* recurse_sites: an unbounded recursion through two call sites (two return addresses).
 * `depth` is the program's own count of levels.
 */
#include <stdio.h>

volatile long depth;

long rec(long n) {
    volatile char pad[40];
    pad[0] = (char)n;
    depth = n;
    if (n % 3 == 0)
        return rec(n + 1) + pad[0];
    return rec(n + 1) * 2 + pad[1];
}

int main(void) {
    return (int)rec(1);
}
