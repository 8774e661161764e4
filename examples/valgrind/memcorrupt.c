/* The seed's heap overflow: one byte written just past a 32-byte block. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    char *psz = malloc(32);   /* 32-byte block */
    printf("block=%p\n", (void *)psz);
    fflush(stdout);
    psz[32] = 'b';            /* invalid write of size 1, 0 bytes after the block */
    printf("wrote past the block\n");
    free(psz);
    return 0;
}
