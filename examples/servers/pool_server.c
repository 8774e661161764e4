/* A long-running thread-pool TCP server for the attach tests (tests/integration/test_servers.py).
 *
 *   pool_server NWORKERS NDEEP [NBLOCKS]
 *
 * NWORKERS threads (128 KiB stacks) block on one epoll fd; each request line is answered
 * "ok <n>\n" (n counts every answer since start).  NDEEP threads (64 KiB stacks) recurse
 * until more than 90% of their stack is in use, then wait for ever; each prints
 * "deep <tid> used <bytes> of <stack size>", measured from its own stack block
 * (pthread_getattr_np) and the address of its innermost local.  NBLOCKS small heap blocks stay
 * live.  It prints "ready <port>" when every thread is in place. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static int ep, lfd;
static long served;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int deep_ready;
void **live;                       /* the NBLOCKS live blocks (a global: tests look them up) */

static void rearm(int fd) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static void answer(int fd) {
    char buf[256], out[64];
    if (read(fd, buf, sizeof buf) <= 0) { close(fd); return; }
    long k = __sync_add_and_fetch(&served, 1);
    int m = snprintf(out, sizeof out, "ok %ld\n", k);
    if (write(fd, out, m) < 0) { close(fd); return; }
    rearm(fd);
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        struct epoll_event ev;
        if (epoll_wait(ep, &ev, 1, -1) != 1) continue;
        if (ev.data.fd == lfd) {
            int c = accept(lfd, 0, 0);
            if (c >= 0) {
                struct epoll_event e = {.events = EPOLLIN | EPOLLONESHOT, .data.fd = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
            }
            rearm(lfd);
        } else {
            answer(ev.data.fd);
        }
    }
    return 0;
}

static uintptr_t stack_size;

__attribute__((noinline)) static void park(uintptr_t used) {
    pthread_mutex_lock(&lock);
    printf("deep %d used %lu of %lu\n", gettid(), (unsigned long)used, (unsigned long)stack_size);
    fflush(stdout);
    deep_ready++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    for (;;) pause();
}

__attribute__((noinline)) static void deep(int level, uintptr_t top, uintptr_t size) {
    volatile char pad[1024];
    pad[0] = (char)level;
    uintptr_t here = (uintptr_t)&pad[0];
    if ((top - here) * 10 > size * 9 + 4096) {
        char probe;
        stack_size = size;
        park(top - (uintptr_t)&probe);
    }
    if (level < 1000000) deep(level + 1, top, size);
    pad[1] = 0;
}

static void *deep_thread(void *arg) {
    (void)arg;
    pthread_attr_t a;
    void *addr;
    size_t size;
    pthread_getattr_np(pthread_self(), &a);
    pthread_attr_getstack(&a, &addr, &size);
    pthread_attr_destroy(&a);
    deep(0, (uintptr_t)addr + size, size);
    return 0;
}

int main(int argc, char **argv) {
    int nworkers = argc > 1 ? atoi(argv[1]) : 8;
    int ndeep = argc > 2 ? atoi(argv[2]) : 1;
    long nblocks = argc > 3 ? atol(argv[3]) : 0;
    live = malloc(sizeof(void *) * (nblocks + 1));
    for (long i = 0; i < nblocks; i++) live[i] = malloc(16 + (i % 64));
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 128) ||
        getsockname(lfd, (struct sockaddr *)&a, &al))
        return 1;
    ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN | EPOLLONESHOT, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 128 * 1024);
    for (int i = 0; i < nworkers; i++) {
        pthread_t t;
        if (pthread_create(&t, &at, worker, 0)) return 2;
    }
    pthread_attr_setstacksize(&at, 64 * 1024);
    for (int i = 0; i < ndeep; i++) {
        pthread_t t;
        if (pthread_create(&t, &at, deep_thread, 0)) return 3;
    }
    pthread_mutex_lock(&lock);
    while (deep_ready < ndeep) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    printf("ready %d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) pause();
}
