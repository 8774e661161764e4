/* crash_handler [thread]: a SIGSEGV handler installed without a sigaltstack, then an unbounded
 * recursion (in main, or in a 1 MiB thread): the overflow's SIGSEGV cannot be delivered -- the
 * kernel finds no room for the signal frame and kills with SIGSEGV/SI_KERNEL ("crash" is
 * never printed).  Under gdb: run, continue. */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
volatile long depth;
static void handler(int s) { write(2, "crash\n", 6); _exit(3); }      /* no sigaltstack */
static long rec(long n) { volatile char pad[256]; pad[0] = n; depth++; return rec(n + 1) + pad[0]; }
static void *body(void *a) { return (void *)rec(0); }
int main(int argc, char **argv) {
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = handler;
    sigaction(SIGSEGV, &sa, 0);
    if (argc < 2) return (int)rec(0);
    pthread_attr_t at; pthread_attr_init(&at); pthread_attr_setstacksize(&at, 1 << 20);
    pthread_t t; pthread_create(&t, &at, body, 0); pthread_join(t, 0); return 0;
}
