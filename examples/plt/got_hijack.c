/* A program that overwrites its own GOT slot (puts -> my_puts) after the first call bound
 * it: what 'got --audit' flags.   gcc -Wl,-z,lazy -o got_hijack got_hijack.c */
#define _GNU_SOURCE
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
extern ElfW(Dyn) _DYNAMIC[];
extern const char __ehdr_start;
int my_puts(const char *s) { return printf("hijacked: %s\n", s); }
__attribute__((noinline)) void checkpoint(void) { __asm__ volatile("" ::: "memory"); }
static void **slot_of(const char *name) {
    char *base = (char *)&__ehdr_start;
    ElfW(Rela) *rel = 0; size_t relsz = 0; ElfW(Sym) *sym = 0; const char *str = 0;
    /* ld.so adjusts these in place on x86_64; elsewhere they stay link-time addresses */
#define P(x) ((x) >= (ElfW(Addr))base ? (char *)(x) : base + (x))
    for (ElfW(Dyn) *d = _DYNAMIC; d->d_tag; d++) {
        if (d->d_tag == DT_JMPREL) rel = (ElfW(Rela) *)P(d->d_un.d_ptr);
        if (d->d_tag == DT_PLTRELSZ) relsz = d->d_un.d_val;
        if (d->d_tag == DT_SYMTAB) sym = (ElfW(Sym) *)P(d->d_un.d_ptr);
        if (d->d_tag == DT_STRTAB) str = P(d->d_un.d_ptr);
    }
    for (size_t i = 0; i < relsz / sizeof *rel; i++)
        if (!strcmp(str + sym[ELF64_R_SYM(rel[i].r_info)].st_name, name))
            return (void **)(base + rel[i].r_offset);
    return 0;
}
int main(int argc, char **argv) {
    puts("first");                                   /* binds puts -> libc */
    void **slot = slot_of("puts");
    *slot = (void *)my_puts;                         /* the program overwrites its own GOT */
    printf("hijacked slot=%p value=%p\n", (void *)slot, (void *)my_puts);
    puts("second");
    fflush(stdout);
    checkpoint();
    return atoi(argc > 1 ? argv[1] : "0");
}
