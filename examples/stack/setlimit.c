/* setlimit LIMIT VLA: the program sets its own RLIMIT_STACK soft limit to LIMIT bytes at run
 * time (after exec placed the libraries), then puts VLA bytes on the stack.
 *   ./setlimit 1048576 4194304       lowers its limit: the 4 MiB buffer no longer fits
 *   ./setlimit 268435456 209715200   raises it: under gdb the libraries still sit 128 MiB below
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

__attribute__((noinline)) static int use(size_t n) {
    char buf[n];
    memset(buf, 5, n);
    return buf[n / 2];
}

int main(int argc, char **argv) {
    struct rlimit rl;
    getrlimit(RLIMIT_STACK, &rl);
    rl.rlim_cur = strtoul(argv[1], 0, 0);
    if (setrlimit(RLIMIT_STACK, &rl)) {
        perror("setrlimit");
        return 2;
    }
    printf("limit=%lu\n", (unsigned long)rl.rlim_cur);
    fflush(stdout);
    return use(strtoul(argv[2], 0, 0)) == 42;
}
