// execve: re-exec this program (an arm64 ELF) and run an interpreter script.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "child")) {
        printf("child argv0 %s args %d %s env %s\n", strrchr(argv[0], '/') ? "path" : argv[0], argc,
               argv[2], getenv("ARMBOARD_TEST_VAR"));
        return 7;
    }
    if (argc > 2 && !strcmp(argv[1], "script")) {
        // Run as a script interpreter: argv = [interp, opt, script path, extra]
        printf("script interp args %d opt %s extra %s\n", argc, argv[1], argc > 3 ? argv[3] : "-");
        return 8;
    }
    char exe[512] = {0};
    readlink("/proc/self/exe", exe, sizeof exe - 1);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char *args[] = {"renamed", "child", "x", NULL};
        char *env[] = {"ARMBOARD_TEST_VAR=yes", NULL};
        execve(exe, args, env);
        perror("execve");
        _exit(99);
    }
    int st;
    waitpid(c, &st, 0);
    printf("exec child exit %d\n", WEXITSTATUS(st));
    char script[] = "/tmp/armboard-script-XXXXXX";
    int fd = mkstemp(script);
    dprintf(fd, "#!%s script\necho not run\n", exe);
    close(fd);
    chmod(script, 0755);
    fflush(stdout);
    c = fork();
    if (c == 0) {
        char *args[] = {script, "extra", NULL};
        execv(script, args);
        perror("execv script");
        _exit(99);
    }
    waitpid(c, &st, 0);
    unlink(script);
    printf("script exit %d\n", WEXITSTATUS(st));
    printf("missing %d\n", execl("/nonexistent/prog", "x", (char *)NULL));
    return 0;
}
