// Files and directories: open/read/write/lseek/stat/dirs/rename/unlink/dup/fcntl/pipes.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

int main(void) {
    char dir[] = "/tmp/armboard-files-XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char path[256], path2[256];
    snprintf(path, sizeof path, "%s/a.txt", dir);
    snprintf(path2, sizeof path2, "%s/b.txt", dir);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0640);
    printf("open ok %d\n", fd >= 0);
    struct iovec iov[2] = {{"hello ", 6}, {"world\n", 6}};
    printf("writev %zd\n", writev(fd, iov, 2));
    printf("lseek %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    char buf[64] = {0};
    printf("pread %zd '%.5s'\n", pread(fd, buf, 5, 6), buf);
    printf("pwrite %zd\n", pwrite(fd, "W", 1, 6));
    lseek(fd, 0, SEEK_SET);
    memset(buf, 0, sizeof buf);
    printf("read %zd %s", read(fd, buf, sizeof buf), buf);
    struct stat st;
    fstat(fd, &st);
    printf("fstat size %ld mode %o reg %d\n", (long)st.st_size, st.st_mode & 0777, S_ISREG(st.st_mode));
    int fl = fcntl(fd, F_GETFL);
    printf("getfl rdwr %d\n", (fl & O_ACCMODE) == O_RDWR);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    printf("cloexec %d\n", fcntl(fd, F_GETFD) & FD_CLOEXEC);
    int d = dup(fd);
    printf("dup shares offset %ld\n", (long)lseek(d, 0, SEEK_CUR));
    close(d);
    close(fd);
    printf("stat %d size %ld\n", stat(path, &st), (long)st.st_size);
    printf("access R %d X %d\n", access(path, R_OK), access(path, X_OK) == 0);
    printf("rename %d\n", rename(path, path2));
    printf("stat old errno %d %d\n", stat(path, &st), errno == ENOENT);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    printf("open dir %d\n", dfd >= 0);
    printf("fstatat %d isdir %d\n", fstatat(dfd, "b.txt", &st, 0), S_ISDIR(st.st_mode));
    close(dfd);
    printf("open notdir errno %d\n", open(path2, O_RDONLY | O_DIRECTORY) < 0 && errno == ENOTDIR);
    char sub[300];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    printf("mkdir %d\n", mkdir(sub, 0755));
    int n = 0;
    DIR *dp = opendir(dir);
    struct dirent *e;
    while ((e = readdir(dp))) n++;
    closedir(dp);
    printf("entries %d\n", n);
    char lnk[300];
    snprintf(lnk, sizeof lnk, "%s/link", dir);
    printf("symlink %d\n", symlink("b.txt", lnk));
    memset(buf, 0, sizeof buf);
    printf("readlink %zd %s\n", readlink(lnk, buf, sizeof buf), buf);
    printf("lstat link %d\n", lstat(lnk, &st) == 0 && S_ISLNK(st.st_mode));
    char exe[512] = {0};
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    const char *base = strrchr(exe, '/');
    printf("exe %d %s\n", el > 0, base ? base + 1 : exe);
    int p[2];
    printf("pipe %d\n", pipe(p));
    write(p[1], "piped", 5);
    memset(buf, 0, sizeof buf);
    printf("pipe read %zd %s\n", read(p[0], buf, sizeof buf), buf);
    close(p[0]);
    close(p[1]);
    unlink(lnk);
    unlink(path2);
    rmdir(sub);
    printf("rmdir %d\n", rmdir(dir));
    char cwd[512];
    printf("getcwd %d\n", getcwd(cwd, sizeof cwd) != NULL);
    printf("bad fd %d %d\n", (int)write(99, "x", 1), errno == EBADF);
    void *volatile bad = (void *)16;
    printf("efault %d %d\n", (int)write(1, bad, 1), errno == EFAULT);
    return 0;
}
