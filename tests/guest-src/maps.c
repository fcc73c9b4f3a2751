// /proc/self/maps and /proc/self/exe as the guest sees them.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    (void)argc;
    char *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(m + 4096, 4096, PROT_READ);
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int stack = 0, rw = 0, ro = 0, code = 0, stack_ok = 0;
    int local;
    unsigned long me = (unsigned long)&local;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) != 3) continue;
        if (strstr(line, "[stack]")) {
            stack = 1;
            stack_ok = me >= s && me < e;
        }
        if (s == (unsigned long)m && e == (unsigned long)m + 4096 && !strncmp(perms, "rw-p", 4)) rw = 1;
        if (s == (unsigned long)m + 4096 && !strncmp(perms, "r--p", 4)) ro = 1;
        if ((unsigned long)main >= s && (unsigned long)main < e && perms[2] == 'x') code = 1;
    }
    fclose(f);
    printf("stack %d contains sp %d\n", stack, stack_ok);
    printf("split rw %d ro %d\n", rw, ro);
    printf("code mapped x %d\n", code);
    char exe[512] = {0};
    readlink("/proc/self/exe", exe, sizeof exe - 1);
    printf("exe matches argv0 %d\n", strstr(exe, strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0]) != NULL);
    return 0;
}
