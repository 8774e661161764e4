/* mutual: ping() and pong() call each other without end; main calls ping(). */
#include <stdio.h>

volatile long depth;
long pong(long n);

long ping(long n) {
    volatile char pad[32];
    pad[0] = (char)n;
    depth = n;
    return pong(n + 1) + pad[0];
}

long pong(long n) {
    volatile char pad[64];
    pad[0] = (char)n;
    depth = n;
    return ping(n + 1) + pad[0];
}

int main(void) {
    return (int)ping(1);
}
