/* altstack ALT VLA [normal]: the first fault (a NULL write) runs a SIGSEGV handler that puts
 * VLA bytes on its stack: an ALT-byte sigaltstack (SA_ONSTACK), or the normal stack with
 * "normal".  Prints the alternate stack it registered.
 *   ./altstack 65536 262144          the handler overflows its 64 KiB alternate stack
 *   ./altstack 327680 262144         passes (prints "handler ok")
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t vla;

__attribute__((noinline)) static void handler(int s) {
    char buf[vla];
    (void)s;
    memset(buf, 1, vla);
    printf("handler ok %d\n", buf[vla / 2]);
    fflush(stdout);
    _exit(0);
}

int main(int argc, char **argv) {
    size_t alt = strtoul(argv[1], 0, 0);
    int onstack = !(argc > 3 && !strcmp(argv[3], "normal"));
    vla = strtoul(argv[2], 0, 0);
    stack_t ss = { .ss_sp = malloc(alt), .ss_size = alt };
    sigaltstack(&ss, 0);
    struct sigaction sa = { .sa_handler = handler, .sa_flags = onstack ? SA_ONSTACK : 0 };
    sigaction(SIGSEGV, &sa, 0);
    printf("altstack=%p size=%zu vla=%zu\n", ss.ss_sp, alt, vla);
    fflush(stdout);
    *(volatile int *)16 = 1;
    return 1;
}
