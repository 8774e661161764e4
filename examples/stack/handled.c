/* handled W H [pause]: the seed's VLA overflow (W*H longs), caught by a SIGSEGV handler on a
 * sigaltstack that prints the fault address it got and then aborts -- or, with "pause",
 * waits there to be attached (gdb -p PID).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int wait_in_handler;

static void handler(int s, siginfo_t *si, void *uc) {
    char msg[128];
    int n = snprintf(msg, sizeof msg, "caught si_addr=%p\n", si->si_addr);
    (void)s;
    (void)uc;
    write(1, msg, n);
    if (wait_in_handler)
        for (;;)
            pause();
    abort();
}

void calc_array(int w, int h) {
    long buf[w * h];
    for (int i = 0; i < w * h; i++)
        buf[i] = i * 2;
    printf("ok %ld\n", buf[w]);
}

int main(int argc, char **argv) {
    wait_in_handler = argc > 3 && !strcmp(argv[3], "pause");
    stack_t ss = { .ss_sp = malloc(1 << 16), .ss_size = 1 << 16 };
    sigaltstack(&ss, 0);
    struct sigaction sa = { .sa_sigaction = handler, .sa_flags = SA_ONSTACK | SA_SIGINFO };
    sigaction(SIGSEGV, &sa, 0);
    printf("pid=%d\n", getpid());
    fflush(stdout);
    calc_array(atoi(argv[1]), atoi(argv[2]));
    return 0;
}
