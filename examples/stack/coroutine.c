/* coroutine SIZE MODE N: run body on a SIZE-byte malloc'd stack (makecontext/swapcontext);
 * MODE rec: recurse N levels of 1 KiB; MODE vla: one N-byte VLA.
 *   ./coroutine 131072 vla 307200     a 300 KiB buffer on a 128 KiB coroutine stack
 *   ./coroutine 393216 vla 307200     passes (prints "back")
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
static ucontext_t mainctx, co;
volatile long depth; static long n; static const char *mode;
static long rec(long k) { volatile char pad[1024]; pad[0] = k; depth++; if (k == 0) return 0;
                          return rec(k - 1) + pad[0]; }
static void body(void) {
    if (!strcmp(mode, "rec")) { printf("rec %ld\n", rec(n)); return; }
    volatile char buf[n]; buf[0] = 1; buf[n - 1] = 2; printf("vla %d\n", buf[0]);
}
int main(int argc, char **argv) {
    size_t size = strtoul(argv[1], 0, 0); mode = argv[2]; n = atol(argv[3]);
    char *stk = malloc(size);
    printf("stack=%p size=%zu\n", stk, size); fflush(stdout);
    getcontext(&co); co.uc_stack.ss_sp = stk; co.uc_stack.ss_size = size; co.uc_link = &mainctx;
    makecontext(&co, body, 0);
    swapcontext(&mainctx, &co);
    puts("back"); return 0;
}
