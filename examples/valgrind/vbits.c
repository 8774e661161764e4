/* Partly initialised memory for vg-vbits / vg-check / vg-who / vg-block.
 * g_buf points at a 64-byte heap block whose first 10 bytes are written;
 * g_holder.ptr and a heap block (g_box, 16 bytes) also point into it, and
 * main's local `local_ref` holds it too.  Prints the addresses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct holder { long tag; char *ptr; };

char *g_buf;
struct holder g_holder;
char **g_box;
char g_static[16];

__attribute__((noinline)) void checkpoint(char *p) { __asm__ volatile("" ::"r"(p)); }

int main(void)
{
    char *local_ref;
    g_buf = malloc(64);
    memset(g_buf, 'A', 10);            /* bytes 0..9 defined, 10..63 undefined */
    g_holder.tag = 1;
    g_holder.ptr = g_buf;
    g_box = malloc(2 * sizeof(char *));
    g_box[0] = g_buf;
    g_box[1] = NULL;
    local_ref = g_buf;
    memset(g_static, 0, 8);
    printf("g_buf=%p g_box=%p &g_holder=%p\n", (void *)g_buf, (void *)g_box, (void *)&g_holder);
    fflush(stdout);
    checkpoint(local_ref);
    free(g_box);
    free(g_buf);
    return 0;
}
