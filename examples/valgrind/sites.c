/* Allocation sites and errors whose right frame is decided by the object file, not the name:
 * new_node() and fopen_config() are the program's own functions (their names look like
 * libc's); open_memstream() is libc's, with line info when libc6-dbg is installed; the
 * write(2) error's program frame is main.  Also: --track-origins origin, use after free and
 * double free (freed and allocated stacks). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>
struct node { struct node *next; char pad[40]; };
__attribute__((noinline)) struct node *new_node(struct node *next) { struct node *n = malloc(sizeof *n); n->next = next; return n; }
__attribute__((noinline)) FILE *fopen_config(const char *p) { return fopen(p, "r"); }
int g_global = 5;
int main(void) {
    char *u = malloc(16);            /* uninitialised */
    char *s; size_t sl;
    FILE *ms = open_memstream(&s, &sl); fprintf(ms, "hello"); fflush(ms);
    struct node *list = new_node(new_node(new_node(0)));
    list = 0;
    FILE *f = fopen_config("/etc/hostname");
    if (u[3] == 'x') write(1, "x", 1);  /* cond jump on uninit: origin = malloc */
    write(1, u, 8);                      /* syscall param points to uninit */
    char *fr = malloc(10); free(fr);
    fr[2] = 1;                           /* use after free */
    free(fr);                            /* double free */
    (void)f; (void)list;
    return 0;
}
