// Signals: handlers, SA_SIGINFO, masks and pending, sigaltstack, SIGSEGV handler, alarm.
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile sig_atomic_t got, code, on_alt;
static char *alt;
static sigjmp_buf jb;
static void *fault_addr;

static void h(int s) { got = s; }
static void hinfo(int s, siginfo_t *si, void *uc) {
    (void)uc;
    got = s;
    code = si->si_code;
    char x;
    on_alt = alt && (char *)&x >= alt && (char *)&x < alt + 65536;
}
static void segv(int s, siginfo_t *si, void *uc) {
    (void)s; (void)uc;
    fault_addr = si->si_addr;
    code = si->si_code;
    siglongjmp(jb, 1);
}

int main(void) {
    signal(SIGUSR1, h);
    raise(SIGUSR1);
    printf("raise handled %d\n", got == SIGUSR1);

    struct sigaction sa = {0};
    sa.sa_sigaction = hinfo;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR2, &sa, NULL);
    got = 0;
    kill(getpid(), SIGUSR2);
    printf("kill siginfo %d code %d\n", got == SIGUSR2, code);

    sigset_t set, old, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    got = 0;
    raise(SIGUSR1);
    sigpending(&pend);
    printf("blocked: delivered %d pending %d\n", got != 0, sigismember(&pend, SIGUSR1));
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("unblocked delivered %d\n", got == SIGUSR1);

    alt = malloc(65536);
    stack_t ss = {.ss_sp = alt, .ss_size = 65536, .ss_flags = 0};
    printf("sigaltstack %d\n", sigaltstack(&ss, NULL));
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);
    printf("on altstack %d\n", on_alt);

    struct sigaction sv = {0};
    sv.sa_sigaction = segv;
    sv.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sv, NULL);
    if (sigsetjmp(jb, 1) == 0) {
        *(volatile int *)0x1234 = 1;
    }
    printf("segv addr %p code %d\n", fault_addr, code);
    char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sigsetjmp(jb, 1) == 0) {
        ro[10] = 1;
    }
    printf("segv ro %d code %d\n", fault_addr == ro + 10, code);

    signal(SIGALRM, h);
    got = 0;
    alarm(1);
    pause();
    printf("alarm %d\n", got == SIGALRM);

    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    raise(SIGUSR1);
    int sig = 0;
    sigwait(&set, &sig);
    printf("sigwait %d\n", sig);

    signal(SIGTERM, SIG_DFL);
    fflush(stdout);
    raise(SIGTERM);
    printf("not reached\n");
    return 0;
}
