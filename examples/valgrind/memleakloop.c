/* The seed's "server that never exits" leak example, made repeatable.
 *
 * Every round leaks 1111, 2456 and 356 bytes (definitely lost: the only
 * pointer is a local that dies) and keeps 45678 and 560000 bytes reachable
 * through the globals g_psz1/g_psz2, so the reachable total grows between
 * leak checks.  After each round the program calls checkpoint(round) (a
 * place to put a breakpoint), then waits: for a line on stdin when stdin is
 * a terminal or a pipe (blocked in read(2), like the seed's getchar()), else
 * (stdin is /dev/null or a file, or the pipe was closed) for one second.
 *
 *   memleakloop            run forever
 *   memleakloop N          run N rounds, then exit 0 (valgrind prints its
 *                          end-of-run leak report: the tests' oracle)
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ROUNDS 1024

char *g_psz1[MAX_ROUNDS];   /* memleak4's blocks: still reachable */
char *g_psz2[MAX_ROUNDS];   /* memleak5's blocks: still reachable */
int g_round;

__attribute__((noinline)) void memleak1(int size) { char *psz = malloc(size); (void)psz; }
__attribute__((noinline)) void memleak2(int size) { char *psz = malloc(size); (void)psz; }
__attribute__((noinline)) void memleak3(int size) { char *psz = malloc(size); (void)psz; }
__attribute__((noinline)) void memleak4(int size) { g_psz1[g_round % MAX_ROUNDS] = malloc(size); }
__attribute__((noinline)) void memleak5(int size) { g_psz2[g_round % MAX_ROUNDS] = malloc(size); }

/* Called after every round: "break checkpoint" stops here. */
__attribute__((noinline)) void checkpoint(int round) { __asm__ volatile("" ::"r"(round)); }

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 0;
    struct stat st;
    int keys = isatty(0) || (fstat(0, &st) == 0 && S_ISFIFO(st.st_mode));
    char *psz = malloc(32);   /* held by main's frame: still reachable */

    printf("begin to alloc memory pid=%d\n", getpid());
    fflush(stdout);
    for (g_round = 0; rounds == 0 || g_round < rounds; g_round++) {
        memleak1(1111);
        memleak2(2456);
        memleak3(356);
        memleak4(45678);
        memleak5(560000);
        printf("round %d: lost 1111+2456+356, kept 45678+560000 via globals\n", g_round + 1);
        fflush(stdout);
        checkpoint(g_round + 1);
        if (rounds && g_round + 1 >= rounds)
            break;
        if (keys && getchar() == EOF)
            keys = 0;
        if (!keys)
            sleep(1);
    }
    printf("finish alloc memory\n");
    free(psz);
    return 0;
}
