// pthreads: create/join, mutexes, condition variables, thread-local storage, thread ids.
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#define N 4
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long counter;
static atomic_long acounter;
static int ready;
static __thread int tls = 7;
static pid_t tids[N];

static void *work(void *arg) {
    long id = (long)arg;
    tls += (int)id;
    tids[id] = syscall(SYS_gettid);
    for (int i = 0; i < 10000; i++) {
        pthread_mutex_lock(&mu);
        counter++;
        pthread_mutex_unlock(&mu);
        atomic_fetch_add(&acounter, 1);
    }
    pthread_mutex_lock(&mu);
    ready++;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    return (void *)(long)(tls * 10);
}

int main(void) {
    pthread_t th[N];
    for (long i = 0; i < N; i++) pthread_create(&th[i], NULL, work, (void *)i);
    pthread_mutex_lock(&mu);
    while (ready < N) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    long sum = 0;
    for (int i = 0; i < N; i++) {
        void *r;
        pthread_join(th[i], &r);
        sum += (long)r;
    }
    int distinct = 1;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < i; j++)
            if (tids[i] == tids[j] || tids[i] == getpid()) distinct = 0;
    printf("counter %ld atomic %ld\n", counter, (long)acounter);
    printf("joined sum %ld main tls %d\n", sum, tls);
    printf("distinct tids %d\n", distinct);
    return 0;
}
