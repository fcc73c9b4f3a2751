// Processes: fork, wait, exit statuses, signal deaths, pipes between processes.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int shared = 5;
    int p[2];
    pipe(p);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        shared = 99;
        close(p[0]);
        char msg[64];
        int n = snprintf(msg, sizeof msg, "child sees %d", shared);
        write(p[1], msg, n);
        _exit(42);
    }
    close(p[1]);
    char buf[64] = {0};
    read(p[0], buf, sizeof buf - 1);
    int st;
    pid_t w = waitpid(c, &st, 0);
    printf("%s\n", buf);
    printf("waited %d exited %d code %d parent still %d\n", w == c, WIFEXITED(st), WEXITSTATUS(st), shared);
    c = fork();
    if (c == 0) {
        raise(SIGKILL);
        _exit(1);
    }
    waitpid(c, &st, 0);
    printf("killed %d sig %d\n", WIFSIGNALED(st), WTERMSIG(st));
    c = fork();
    if (c == 0) {
        *(volatile int *)8 = 1;
        _exit(1);
    }
    waitpid(c, &st, 0);
    printf("segv %d sig %d\n", WIFSIGNALED(st), WTERMSIG(st));
    c = fork();
    if (c == 0) {
        abort();
    }
    waitpid(c, &st, 0);
    printf("abort %d sig %d\n", WIFSIGNALED(st), WTERMSIG(st));
    for (int i = 0; i < 3; i++)
        if (fork() == 0) _exit(i);
    int total = 0;
    while (wait(&st) > 0) total += WEXITSTATUS(st);
    printf("reaped total %d\n", total);
    return 0;
}
