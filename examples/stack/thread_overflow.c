/* thread_overflow: a thread with a small stack (default 64 KiB) puts a buffer
 * (default 128 KiB) on it.
 *
 *   ./thread_overflow                 SIGSEGV in the thread (past its guard page)
 *   ./thread_overflow 262144          256 KiB stack: passes
 *   ./thread_overflow 65536 16384     16 KiB buffer: passes
 * Prints the stack size it asked for and the buffer size.  A size below PTHREAD_STACK_MIN
 * (128 KiB on aarch64) is raised to it; the default buffer is twice the smallest stack.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t bufsize;

__attribute__((noinline)) static long fill(void) {
    char buf[bufsize];                 /* VLA on the thread's stack */
    memset(buf, 7, bufsize);
    return buf[bufsize / 3];
}

static void *worker(void *arg) {
    (void)arg;
    return (void *)fill();
}

int main(int argc, char **argv) {
    size_t least = (64 << 10) < PTHREAD_STACK_MIN ? PTHREAD_STACK_MIN : (64 << 10);
    size_t stacksize = argc > 1 ? strtoul(argv[1], NULL, 0) : least;
    if (stacksize < PTHREAD_STACK_MIN)
        stacksize = PTHREAD_STACK_MIN;
    bufsize = argc > 2 ? strtoul(argv[2], NULL, 0) : 2 * least;
    pthread_attr_t attr;
    pthread_t t;
    void *res;
    pthread_attr_init(&attr);
    if (pthread_attr_setstacksize(&attr, stacksize) != 0) {
        fprintf(stderr, "bad stack size %zu\n", stacksize);
        return 2;
    }
    printf("stacksize=%zu bufsize=%zu\n", stacksize, bufsize);
    fflush(stdout);
    pthread_create(&t, &attr, worker, NULL);
    pthread_join(t, &res);
    printf("ok %ld\n", (long)res);
    return 0;
}
