/* libpltlib.so: a shared library with its own PLT (strlen, printf), linked lazily.
 *   gcc -shared -fPIC -Wl,-z,lazy -o libpltlib.so pltlib.c */
#include <stdio.h>
#include <string.h>

int lib_hello(const char *who)
{
    printf("lib_hello: %s (%zu)\n", who, strlen(who));
    return 0;
}
