// Reads and writes that fault, from hot (compiled) code: without a SIGSEGV handler the
// process dies of SIGSEGV; pages made inaccessible or read-only and accessible again keep
// their data; a handler installed after the code got hot still sees the precise faults.
// Each case runs in a child; the parent prints how it ended.
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096

__attribute__((noinline)) long rd(const volatile long *p) { return *p; }
__attribute__((noinline)) void wr(volatile long *p, long v) { *p = v; }
__attribute__((noinline)) long ldx(long *p) {
    long v;
    __asm__ volatile("ldxr %0, [%1]\n\tclrex" : "=r"(v) : "r"(p) : "memory");
    return v;
}

// Writes p many times (so wr is compiled), then q once.
static void hot_write_then(long *p, long *q) {
    for (int i = 0; i < 200000; i++) wr(p + (i & 7), i);
    wr(q, 42);
}

// Reads p many times (so rd is compiled), then q once.
static long hot_then(const long *p, const long *q) {
    long s = 0;
    for (int i = 0; i < 200000; i++) s += rd(p + (i & 7));
    return s + rd(q);
}

static char *area(void) {
    char *p = mmap(0, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) exit(90);
    memset(p, 1, 4 * PG);
    return p;
}

static sigjmp_buf jb;
static volatile void *fault_addr;

static void on_segv(int s, siginfo_t *si, void *uc) {
    (void)s;
    (void)uc;
    fault_addr = si->si_addr;
    siglongjmp(jb, 1);
}

static int run(int c) {
    char *p = area();
    long *good = (long *)p;
    switch (c) {
    case 0: // unmapped
        munmap(p + PG, PG);
        printf("%ld\n", hot_then(good, (long *)(p + PG + 8)));
        return 0;
    case 1: // PROT_NONE
        mprotect(p + 2 * PG, PG, PROT_NONE);
        printf("%ld\n", hot_then(good, (long *)(p + 2 * PG)));
        return 0;
    case 2: // inaccessible, then readable again: the data stayed
        mprotect(p + PG, 2 * PG, PROT_NONE);
        mprotect(p + PG, 2 * PG, PROT_READ);
        printf("sum %ld\n", hot_then(good, (long *)(p + 2 * PG + 16)));
        return 0;
    case 3: { // mapped inaccessible, made read/write: zeros
        long *q = mmap(0, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        mprotect(q, PG, PROT_READ | PROT_WRITE);
        printf("sum %ld\n", hot_then(good, q + 5));
        return 0;
    }
    case 4: { // moved while inaccessible, then readable: the data moved with it
        mprotect(p, 4 * PG, PROT_NONE);
        char *m = mremap(p, 4 * PG, 8 * PG, MREMAP_MAYMOVE);
        if (m == MAP_FAILED) return 91;
        mprotect(m, 8 * PG, PROT_READ);
        printf("sum %ld\n", hot_then((long *)m, (long *)(m + 3 * PG)));
        return 0;
    }
    case 5: { // a handler installed once rd is hot sees the precise fault, twice
        printf("warm %ld\n", hot_then(good, good));
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSEGV, &sa, NULL);
        mprotect(p + 3 * PG, PG, PROT_NONE);
        for (int k = 0; k < 2; k++) {
            if (sigsetjmp(jb, 1) == 0) {
                printf("%ld\n", hot_then(good, (long *)(p + 3 * PG + 24)));
            } else {
                printf("caught at +%ld\n", (long)((char *)fault_addr - p));
            }
        }
        // And a write to a read-only page.
        hot_write_then(good, good);
        mprotect(p + 2 * PG, PG, PROT_READ);
        if (sigsetjmp(jb, 1) == 0) {
            hot_write_then(good, (long *)(p + 2 * PG + 40));
            printf("wrote\n");
        } else {
            printf("caught write at +%ld\n", (long)((char *)fault_addr - p));
        }
        return 0;
    }
    case 6: // a write to a read-only page
        mprotect(p + PG, PG, PROT_READ);
        hot_write_then(good, (long *)(p + PG + 8));
        return 0;
    case 7: // a write to the program's own code
        hot_write_then(good, (long *)(void *)rd);
        return 0;
    case 8: // read-only, then writable again: the data stayed and writes work
        mprotect(p, 4 * PG, PROT_READ);
        mprotect(p, 4 * PG, PROT_READ | PROT_WRITE);
        hot_write_then(good, (long *)(p + 3 * PG));
        printf("sum %ld\n", hot_then(good, (long *)(p + 3 * PG)) + rd((long *)(p + 2 * PG)));
        return 0;
    case 10: { // a load-exclusive, hot, then misaligned: SIGBUS
        long t = 0;
        for (int i = 0; i < 200000; i++) t += ldx(good + (i & 7));
        printf("%ld\n", t + ldx((long *)(p + 1)));
        return 0;
    }
    case 9: // far outside any mapping (and outside armboard's 40-bit guest space)
        printf("%ld\n", hot_then(good, (long *)(1UL << 45)));
        return 0;
    }
    return 99;
}

int main(void) {
    for (int c = 0; c < 11; c++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            int r = run(c);
            fflush(stdout);
            _exit(r);
        }
        int st;
        waitpid(pid, &st, 0);
        if (WIFSIGNALED(st))
            printf("case %d: signal %d\n", c, WTERMSIG(st));
        else
            printf("case %d: exit %d\n", c, WEXITSTATUS(st));
    }
    return 0;
}
