/* badptr: ordinary bad-pointer faults that are NOT stack problems.
 *
 *   ./badptr null      write through a NULL pointer (+0x10)
 *   ./badptr heap      write 64 MiB past a malloc'd block (beyond [heap])
 * Prints the address it is about to write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rec { long a, b, c; };

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "null";
    volatile long *target;
    if (strcmp(mode, "heap") == 0) {
        char *p = malloc(64);
        target = (volatile long *)(p + (64 << 20));
    } else {
        struct rec *r = NULL;
        target = (volatile long *)&r->c;
    }
    printf("mode=%s target=%p\n", mode, (void *)target);
    fflush(stdout);
    *target = 42;
    printf("ok\n");
    return 0;
}
