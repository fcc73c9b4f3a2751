// Memory: anonymous and file mappings, munmap, mprotect, mremap, madvise, brk.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
    long pg = sysconf(_SC_PAGESIZE);
    printf("page %ld\n", pg);
    char *a = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("anon ok %d zero %d\n", a != MAP_FAILED, a[100] == 0 && a[4 * pg - 1] == 0);
    memset(a, 'x', 4 * pg);
    printf("munmap middle %d\n", munmap(a + pg, pg));
    printf("after %c %c\n", a[0], a[2 * pg]);
    char *f = mmap(a + pg, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("fixed hole %d zero %d\n", f == a + pg, f[0] == 0);
    printf("mprotect %d\n", mprotect(a, pg, PROT_READ));
    printf("still readable %c\n", a[1]);
    a[2 * pg + 5] = 'y';
    printf("madvise %d zeroed %d\n", madvise(a + 2 * pg, pg, MADV_DONTNEED), a[2 * pg + 5] == 0);
    char *r = mremap(a + 3 * pg, pg, 8 * pg, MREMAP_MAYMOVE);
    printf("mremap ok %d kept %c\n", r != MAP_FAILED, r[0]);
    r[8 * pg - 1] = 'z';
    printf("grown %c\n", r[8 * pg - 1]);

    char tmpl[] = "/tmp/armboard-mmap-XXXXXX";
    int fd = mkstemp(tmpl);
    unlink(tmpl);
    char line[64];
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(line, sizeof line, "line %03d\n", i);
        write(fd, line, n);
    }
    char *p = mmap(NULL, 2000, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("file private %.8s / %.8s\n", p, p + 9 * 150);
    char *s = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    memcpy(s, "LINE", 4);
    printf("msync %d\n", msync(s, pg, MS_SYNC));
    char back[9] = {0};
    pread(fd, back, 8, 0);
    printf("shared wrote file: %s\n", back);
    printf("private sees it: %.4s\n", p);
    char *off = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, pg);
    printf("offset map %.8s\n", off);
    printf("bad offset %d\n", mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, 1) == MAP_FAILED && errno == EINVAL);
    close(fd);
    printf("after close %.4s\n", s);

    void *b0 = sbrk(0);
    void *b1 = sbrk(1 << 20);
    memset(b1, 1, 1 << 20);
    printf("sbrk %d\n", b1 == b0 && sbrk(0) == (char *)b0 + (1 << 20));
    char *big = malloc(64 << 20);
    big[0] = 1;
    big[(64 << 20) - 1] = 2;
    printf("big malloc %d\n", big[0] + big[(64 << 20) - 1]);
    free(big);
    return 0;
}
