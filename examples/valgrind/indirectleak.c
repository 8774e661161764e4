/* Indirect leaks: a three-node list whose head pointer is dropped.
 * The 48-byte head is definitely lost; the two 48-byte nodes it points to
 * (and their 100-byte payloads) are indirectly lost.  A second list stays
 * reachable through the global g_keep.  Prints the addresses it allocates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *next;
    char *payload;
    char name[32];
};

struct node *g_keep;

__attribute__((noinline)) struct node *make_list(int n)
{
    struct node *head = NULL;
    for (int i = 0; i < n; i++) {
        struct node *nd = malloc(sizeof *nd);
        nd->payload = malloc(100);
        memset(nd->payload, 'x', 100);
        snprintf(nd->name, sizeof nd->name, "node%d", i);
        nd->next = head;
        head = nd;
    }
    return head;
}

__attribute__((noinline)) void lose_list(void)
{
    struct node *lost = make_list(3);
    printf("lost head=%p\n", (void *)lost);
}

__attribute__((noinline)) void checkpoint(void) { __asm__ volatile(""); }

int main(void)
{
    lose_list();
    g_keep = make_list(2);
    printf("kept head=%p\n", (void *)g_keep);
    fflush(stdout);
    checkpoint();
    return 0;
}
