/* An rtld-audit module whose la_symbind hands out its own my_puts for puts:
 *   gcc -shared -fPIC -o libauditor.so symbind_auditor.c
 *   LD_AUDIT=$PWD/libauditor.so ./hello_calls       (or link with -Wl,--audit=...)
 * ld.so writes my_puts into the program's puts slot: 'got --audit' says 'redirected'. */
#define _GNU_SOURCE
#include <link.h>
#include <string.h>
#include <unistd.h>

int my_puts(const char *s)          /* write(2): this namespace's stdio is not the program's */
{
    write(1, "[audited] ", 10);
    write(1, s, strlen(s));
    return (int)write(1, "\n", 1);
}

unsigned int la_version(unsigned int v) { return LAV_CURRENT; }

unsigned int la_objopen(struct link_map *map, Lmid_t lmid, uintptr_t *cookie)
{
    return LA_FLG_BINDTO | LA_FLG_BINDFROM;
}

uintptr_t la_symbind64(Elf64_Sym *sym, unsigned int ndx, uintptr_t *refcook, uintptr_t *defcook,
                       unsigned int *flags, const char *symname)
{
    return strcmp(symname, "puts") == 0 ? (uintptr_t)my_puts : sym->st_value;
}
