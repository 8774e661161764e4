/* The PLT/GOT demo: imports resolved lazily one by one, an ifunc (memcpy), a local
 * ifunc of our own (IRELATIVE), a function of a linked shared library (which has its own
 * PLT), and optionally a dlopen'ed plugin.  It prints what the dynamic linker itself
 * says (dlsym) so tests can compare the GOT with an independent oracle.
 *
 *   gcc -Wl,-z,lazy -o plt_demo plt_demo.c -L. -lpltlib -Wl,-rpath,'$ORIGIN'
 *   ./plt_demo [PLUGIN.so]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int lib_hello(const char *who);                 /* from libpltlib.so */

static int add_generic(int a, int b) { return a + b; }
static void *resolve_add(void) { return (void *)add_generic; }
int add(int a, int b) __attribute__((ifunc("resolve_add")));

/* a place to stop: everything called before it is resolved, what follows is not */
__attribute__((noinline)) void checkpoint(void) { __asm__ volatile("" ::: "memory"); }

int main(int argc, char **argv)
{
    char buf[64];
    memcpy(buf, "hello", 6);                     /* ifunc: JUMP_SLOT -> __memmove_*_unaligned* */
    puts(buf);
    printf("dlsym memcpy=%p\n", dlsym(RTLD_DEFAULT, "memcpy"));
    printf("dlsym puts=%p\n", dlsym(RTLD_DEFAULT, "puts"));
    printf("dlsym printf=%p\n", dlsym(RTLD_DEFAULT, "printf"));
    printf("dlsym lib_hello=%p\n", dlsym(RTLD_DEFAULT, "lib_hello"));
    printf("dlsym getpid=%p\n", dlsym(RTLD_DEFAULT, "getpid"));
    printf("main=%p add=%d\n", (void *)main, add(2, 3));
    lib_hello("demo");
    if (argc > 1) {
        void *h = dlopen(argv[1], RTLD_NOW);
        if (!h) { printf("dlopen failed: %s\n", dlerror()); return 1; }
        int (*run)(const char *) = (int (*)(const char *))dlsym(h, "plugin_run");
        printf("dlsym plugin_run=%p\n", (void *)run);
        run("plugin");
    }
    fflush(stdout);
    checkpoint();
    printf("pid=%d\n", (int)getpid());           /* getpid: still unresolved at checkpoint */
    return 0;
}
