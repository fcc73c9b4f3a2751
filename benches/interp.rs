//! Criterion benches for decode and interpreter throughput (filled in by the benches work).

use criterion::{criterion_group, criterion_main, Criterion};

fn decode(c: &mut Criterion) {
    let words: Vec<u32> = (0..4096u32)
        .map(|i| 0x9100_0000 | (i << 10) | (i & 31))
        .collect();
    c.bench_function("decode_add_imm", |b| {
        b.iter(|| {
            words
                .iter()
                .filter(|&&w| armboard_cpu::a64::decode(w).is_some())
                .count()
        })
    });
}

criterion_group!(benches, decode);
criterion_main!(benches);
