/* smash STRING: copies STRING into a 16-byte local array.  Built with -fstack-protector-strong
 * a long STRING overwrites copy()'s canary (and its return address): __stack_chk_fail aborts.
 *   ./smash short                     passes
 *   ./smash AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA    *** stack smashing detected ***
 */
#include <stdio.h>
#include <string.h>

__attribute__((noinline)) void copy(const char *s) {
    char buf[16];
    strcpy(buf, s);
    printf("%s\n", buf);
}

int main(int argc, char **argv) {
    copy(argc > 1 ? argv[1] : "short");
    return 0;
}
