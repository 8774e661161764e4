/* The seed's stack overflow: a w*h long VLA (1920x1080 -> 15.8 MiB) on an 8 MiB stack.
   Writing llBuf[0] (the lowest address) first faults far below the stack: the kernel's
   acct_stack_growth refuses (size > RLIMIT_STACK) with -ENOMEM and the program gets SIGSEGV. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void processBuf(long *lBuf, int len)
{
    long sum = 0;
    for (int i = 0; i < len; i++)
        sum += lBuf[i];
    printf("sum=%ld\n", sum);
}

void calc_array(int w, int h)
{
    int stackLen = w * h;
    long llBuf[stackLen];
    for (int i = 0; i < stackLen; i++)
        llBuf[i] = i * 2;
    processBuf(llBuf, stackLen);
}

int main(int argc, char **argv)
{
    int w = 1920, h = 1080;
    if (argc > 2) {
        w = atoi(argv[1]);
        h = atoi(argv[2]);
    }
    printf("pid %d buffer %d bytes\n", getpid(), w * h * (int)sizeof(long));
    fflush(stdout);
    calc_array(w, h);
    return 0;
}
