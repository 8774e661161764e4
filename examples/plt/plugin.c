/* A dlopen'ed plugin with its own PLT: toupper and puts are resolved in its GOT.
 *   gcc -shared -fPIC -Wl,-z,lazy -o plugin.so plugin.c */
#include <ctype.h>
#include <stdio.h>

int plugin_run(const char *s)
{
    char up[64];
    int i = 0;
    for (; s[i] && i < 63; i++)
        up[i] = (char)toupper((unsigned char)s[i]);
    up[i] = 0;
    puts(up);
    return i;
}
