/* thread_clash STACK BUF: thread A, created with no guard page, puts BUF bytes on its
 * STACK-byte stack; thread B, created right after it (its block lies just below A's), waits.
 *   ./thread_clash 262144 530000     A's frame reaches over B's stack into B's guard page
 *   ./thread_clash 655360 530000     passes
 * A starts filling only once B sleeps in sleep() (main watches B's /proc syscall file), so
 * B's frames at A's fault are the same on an idle and on a loaded machine.
 */
#define _GNU_SOURCE             /* gettid() */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static size_t bufsize;
static pthread_barrier_t bar, go;
static volatile pid_t b_tid;

__attribute__((noinline)) static long fill(void) {
    char buf[bufsize];
    memset(buf, 7, bufsize);
    return buf[bufsize / 3];
}

static void *a_main(void *x) {
    (void)x;
    pthread_barrier_wait(&bar);
    pthread_barrier_wait(&go);
    return (void *)fill();
}

static void *b_main(void *x) {
    (void)x;
    b_tid = gettid();
    pthread_barrier_wait(&bar);
    sleep(2);
    return 0;
}

/* Until thread TID is blocked in clock_nanosleep (what sleep() calls), at most about 1 s. */
static void wait_until_asleep(pid_t tid) {
    char path[64], line[32];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    for (int i = 0; i < 1000; i++) {
        FILE *f = fopen(path, "r");
        long nr = -1;
        if (f) {
            if (fgets(line, sizeof line, f) && line[0] >= '0' && line[0] <= '9')
                nr = strtol(line, 0, 10);
            fclose(f);
        }
        if (nr == SYS_clock_nanosleep)
            return;
        usleep(1000);
    }
}

int main(int argc, char **argv) {
    size_t stack = strtoul(argv[1], 0, 0);
    pthread_attr_t a, b;
    pthread_t ta, tb;
    void *r;
    bufsize = strtoul(argv[2], 0, 0);
    pthread_barrier_init(&bar, 0, 3);
    pthread_barrier_init(&go, 0, 2);
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, stack);
    pthread_attr_setguardsize(&a, 0);
    pthread_attr_init(&b);
    pthread_attr_setstacksize(&b, stack);
    printf("stack=%zu buf=%zu\n", stack, bufsize);
    fflush(stdout);
    pthread_create(&ta, &a, a_main, 0);
    pthread_create(&tb, &b, b_main, 0);
    pthread_barrier_wait(&bar);
    wait_until_asleep(b_tid);
    pthread_barrier_wait(&go);
    pthread_join(ta, &r);
    pthread_join(tb, &r);
    printf("ok\n");
    return 0;
}
