/* big_frames N: three nested functions, each with a fixed N-KiB array (default 3 MiB each):
 * no single frame dominates, no recursion -- a few big frames together.
 */
#include <stdlib.h>
#include <string.h>

#ifndef KIB
#define KIB 3072
#endif

__attribute__((noinline)) int c(void) { volatile char b[KIB << 10]; memset((char *)b, 3, sizeof b); return b[5]; }
__attribute__((noinline)) int b(void) { volatile char x[KIB << 10]; memset((char *)x, 2, sizeof x); return c() + x[7]; }
__attribute__((noinline)) int a(void) { volatile char x[KIB << 10]; memset((char *)x, 1, sizeof x); return b() + x[9]; }

int main(void) {
    return a() == 99;
}
