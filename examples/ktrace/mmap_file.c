/* mmap a file, then stop in after_mmap(): the seed's thp_get_unmapped_area workflow. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

void after_mmap(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "/etc/passwd";
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); return 1; }
    void *p = mmap(NULL, 1 << 22, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    printf("pid %d mapped %s at %p\n", getpid(), path, p);
    fflush(stdout);
    after_mmap(p);
    if (argc > 2) pause();
    return 0;
}
