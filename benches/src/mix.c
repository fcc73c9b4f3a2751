/* A small CPU workload for benches/compare.sh: integer, floating-point and memory phases,
 * each printing a checksum so that a wrong emulation shows as a different output.
 *
 * Build: aarch64-linux-gnu-gcc -O2 -static -o mix benches/src/mix.c -lm
 * Run:   ./mix [SCALE]   (default 1; time grows linearly)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Integer: sort random keys, then hash them (branches, compares, multiplies, divides). */
static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint64_t phase_int(int scale) {
    enum { N = 200000 };
    uint32_t *keys = malloc(N * sizeof *keys);
    uint64_t h = 1469598103934665603ull;
    for (int rep = 0; rep < scale; rep++) {
        for (int i = 0; i < N; i++)
            keys[i] = (uint32_t)next_rand();
        qsort(keys, N, sizeof *keys, cmp_u32);
        for (int i = 0; i < N; i++) {
            h ^= keys[i];
            h *= 1099511628211ull;
            h += (uint64_t)keys[i] / (uint64_t)(i + 3);
        }
        /* A sieve: loads, stores, short loops. */
        enum { M = 1 << 20 };
        static unsigned char comp[M];
        memset(comp, 0, sizeof comp);
        uint64_t primes = 0;
        for (uint64_t p = 2; p < M; p++) {
            if (comp[p])
                continue;
            primes += p;
            for (uint64_t q = p * p; q < M; q += p)
                comp[q] = 1;
        }
        h ^= primes;
    }
    free(keys);
    return h;
}

/* Floating point: a dense matrix multiply and an n-body style loop with sqrt. */
static double phase_fp(int scale) {
    enum { D = 96 };
    static double a[D][D], b[D][D], c[D][D];
    double sum = 0;
    for (int rep = 0; rep < scale; rep++) {
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++) {
                a[i][j] = (double)((i * 7 + j * 3 + rep) % 17) / 8.0 - 1.0;
                b[i][j] = (double)((i * 5 + j * 11) % 13) / 4.0 - 1.5;
            }
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++) {
                double s = 0;
                for (int k = 0; k < D; k++)
                    s += a[i][k] * b[k][j];
                c[i][j] = s;
            }
        for (int i = 0; i < D; i++)
            sum += c[i][(i * 5) % D];

        enum { P = 64 };
        double x[P], y[P], vx[P], vy[P];
        for (int i = 0; i < P; i++) {
            x[i] = cos(i * 0.1) * (1 + i);
            y[i] = sin(i * 0.1) * (1 + i);
            vx[i] = vy[i] = 0;
        }
        for (int step = 0; step < 60; step++) {
            for (int i = 0; i < P; i++) {
                double fx = 0, fy = 0;
                for (int j = 0; j < P; j++) {
                    double dx = x[j] - x[i], dy = y[j] - y[i];
                    double r2 = dx * dx + dy * dy + 0.01;
                    double inv = 1.0 / (r2 * sqrt(r2));
                    fx += dx * inv;
                    fy += dy * inv;
                }
                vx[i] += fx * 0.001;
                vy[i] += fy * 0.001;
            }
            for (int i = 0; i < P; i++) {
                x[i] += vx[i];
                y[i] += vy[i];
            }
        }
        for (int i = 0; i < P; i++)
            sum += x[i] * 0.5 + y[i] * 0.25;
        sum += (double)(float)(sum * 1e-3);
    }
    return sum;
}

/* Memory: copies between buffers and a pointer-chasing walk over a shuffled list. */
static uint64_t phase_mem(int scale) {
    enum { B = 1 << 21, L = 1 << 18 };
    unsigned char *src = malloc(B), *dst = malloc(B);
    uint32_t *next = malloc(L * sizeof *next);
    uint64_t h = 0;
    for (int i = 0; i < B; i++)
        src[i] = (unsigned char)(i * 131 + (i >> 9));
    for (int rep = 0; rep < scale; rep++) {
        for (int k = 0; k < 8; k++) {
            memcpy(dst, src + k * 64, B - k * 64);
            memmove(src + 1, src, B / 2);
            h += dst[(k * 7919) % B] + src[(k * 104729) % B];
        }
        for (uint32_t i = 0; i < L; i++)
            next[i] = i;
        for (uint32_t i = L - 1; i > 0; i--) {
            uint32_t j = (uint32_t)(next_rand() % (i + 1));
            uint32_t t = next[i];
            next[i] = next[j];
            next[j] = t;
        }
        uint32_t p = 0;
        for (int i = 0; i < 4 * L; i++) {
            p = next[p];
            h += p;
        }
    }
    free(src);
    free(dst);
    free(next);
    return h;
}

int main(int argc, char **argv) {
    int scale = argc > 1 ? atoi(argv[1]) : 1;
    if (scale < 1)
        scale = 1;
    printf("int %016llx\n", (unsigned long long)phase_int(scale));
    printf("fp  %.6f\n", phase_fp(scale));
    printf("mem %016llx\n", (unsigned long long)phase_mem(scale));
    return 0;
}
