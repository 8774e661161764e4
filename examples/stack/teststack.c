/* teststack: the seed's stack-overflow example (a VLA sized by the arguments).
 *
 *   ./teststack            800x600   -> 3.7 MiB on the stack: passes
 *   ./teststack 1920 1080  1920x1080 -> 15.8 MiB: SIGSEGV under the default 8 MiB limit
 *   ulimit -s 16384; ./teststack 1920 1080  -> passes
 */
#include <stdlib.h>
#include <stdio.h>

void processBuf(long *lBuf, int len) {
    long sum = 0;
    int i = 0;
    for (i = 0; i < len; i++) {
        sum += lBuf[i];
    }
    printf("sum=%ld\n", sum);
}

void calc_array(int w, int h) {
    int i;
    int stackLen = w * h;
    long llBuf[stackLen];
    for (i = 0; i < stackLen; i++) {
        llBuf[i] = i * 2;
    }
    processBuf(llBuf, stackLen);
}

int main(int argc, char **argv) {
    int w = 800, h = 600;
    if (argc > 2) {
        w = atoi(argv[1]);
        h = atoi(argv[2]);
    }
    calc_array(w, h);
    return 0;
}
