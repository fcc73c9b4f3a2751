/* A guest that generates code: writes instructions into an executable mapping, flushes the
 * instruction cache, runs them, rewrites them in place, flushes again and runs the new code;
 * then rewrites code another thread is running, which must see the new code too. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

typedef long (*fn)(long);

static void emit_add(uint32_t *p, unsigned imm) {
    p[0] = 0x91000000u | (imm << 10); /* add x0, x0, #imm */
    p[1] = 0xd65f03c0u;               /* ret */
}

static atomic_int stage;
static fn shared;
static long seen[2];

/* Runs `shared` until it is hot, waits while the main thread rewrites it, runs it again. */
static void *runner(void *arg) {
    (void)arg;
    long r = 0;
    for (int i = 0; i < 2000; i++)
        r = shared(i);
    seen[0] = r;
    atomic_store(&stage, 1);
    while (atomic_load(&stage) != 2)
        ;
    for (int i = 0; i < 2000; i++)
        r = shared(i);
    seen[1] = r;
    return NULL;
}

int main(void) {
    uint32_t *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    fn f = (fn)code;
    long total = 0;
    for (unsigned round = 1; round <= 5; round++) {
        emit_add(code, round * 10);
        __builtin___clear_cache((char *)code, (char *)(code + 2));
        long r = 0;
        for (int i = 0; i < 1000; i++) /* hot enough to be compiled */
            r = f(i);
        printf("round %u: f(999) = %ld\n", round, r);
        total += r;
    }
    /* Same code again through a read-only, then executable, remapping (mprotect). */
    mprotect(code, 4096, PROT_READ | PROT_WRITE);
    emit_add(code, 7);
    mprotect(code, 4096, PROT_READ | PROT_EXEC);
    printf("after mprotect: f(1) = %ld\n", f(1));
    printf("total %ld\n", total);
    /* Another thread's code: the instruction-cache maintenance of one thread is seen by all. */
    mprotect(code, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
    emit_add(code, 100);
    __builtin___clear_cache((char *)code, (char *)(code + 2));
    shared = f;
    pthread_t t;
    pthread_create(&t, NULL, runner, NULL);
    while (atomic_load(&stage) != 1)
        ;
    emit_add(code, 200);
    __builtin___clear_cache((char *)code, (char *)(code + 2));
    atomic_store(&stage, 2);
    pthread_join(t, NULL);
    printf("other thread: f(1999) = %ld, then %ld after the rewrite\n", seen[0], seen[1]);
    return 0;
}
