//! Instruction tests for loads and stores. Expected values follow the Arm ARM pseudocode;
//! the encodings were produced with `aarch64-linux-gnu-as`.

use crate::testing::{run_with, FlatMem, CODE, DATA};
use crate::{CpuState, FaultKind, Stop};

/// Differential check against reference results (unicorn, cortex-a72) from a case file:
/// `LS_CASES=/path cargo test -p armboard-cpu unicorn_cases -- --ignored`. Each line holds
/// the instruction word, a seed for memory and V registers, X0-X30 and SP, then `|`, the
/// reference status (`ok`, `fault`, `undef`), X0-X30, SP, V0-V31 and an FNV-1a hash of the
/// data area.
#[test]
#[ignore]
fn unicorn_cases() {
    let Ok(path) = std::env::var("LS_CASES") else {
        return;
    };
    let text = std::fs::read_to_string(path).expect("case file");
    let mut bad = 0;
    for line in text.lines() {
        let (inp, out) = line.split_once(" | ").expect("two halves");
        let inp: Vec<u64> = inp
            .split(' ')
            .map(|s| u64::from_str_radix(s, 16).expect("hex"))
            .collect();
        let mut outs = out.split(' ');
        let status = outs.next().expect("status");
        let out: Vec<u128> = outs
            .map(|s| u128::from_str_radix(s, 16).expect("hex"))
            .collect();
        let (word, seed) = (inp[0] as u32, inp[1]);
        let mut st = CpuState::new();
        st.x.copy_from_slice(&inp[2..34]);
        for (j, v) in st.v.iter_mut().enumerate() {
            *v = ref_v(seed, j as u64);
        }
        let (st, mem, stop) = run_with(&[word], st, |m| ref_mem(m, seed));
        let got = match stop {
            Stop::Brk(0) => "ok",
            // The reference checks no alignment for STXR without a monitor or for LDAR/STLR;
            // ARMv8.0 does (AArch64.CheckAlignment for ordered and atomic accesses).
            Stop::Fault(f) if f.kind == FaultKind::Alignment => continue,
            Stop::Fault(_) => "fault",
            Stop::Undefined(_) => "undef",
            _ => "other",
        };
        // A failing STXR may or may not check the access first (IMPLEMENTATION DEFINED).
        let store_excl = word & 0x3f40_0000 == 0x0800_0000;
        if store_excl && got == "ok" && status == "fault" {
            continue;
        }
        let mut diffs = Vec::new();
        if got != status {
            diffs.push(format!("status {got} want {status}"));
        }
        for (k, (&x, &want)) in st.x.iter().zip(&out[..32]).enumerate() {
            if u128::from(x) != want {
                diffs.push(format!("x{k} {x:#x} want {want:#x}"));
            }
        }
        for (j, (&v, &want)) in st.v.iter().zip(&out[32..64]).enumerate() {
            if v != want {
                diffs.push(format!("v{j} {v:#x} want {want:#x}"));
            }
        }
        let h = fnv(&mem.data[(DATA - CODE) as usize..(DATA - CODE) as usize + REF_DLEN]);
        if u128::from(h) != out[64] {
            diffs.push("memory".into());
        }
        if !diffs.is_empty() {
            bad += 1;
            if bad <= 40 {
                eprintln!("{word:08x} ({status}): {}", diffs.join(", "));
            }
        }
    }
    assert_eq!(bad, 0, "{bad} cases differ");
}

const REF_DLEN: usize = 0x2000;

fn splitmix(z: u64) -> u64 {
    let z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn ref_v(seed: u64, j: u64) -> u128 {
    u128::from(splitmix(seed ^ (0xaaaa_0000 + 2 * j)))
        | (u128::from(splitmix(seed ^ (0xaaaa_0000 + 2 * j + 1))) << 64)
}

fn ref_mem(m: &mut FlatMem, seed: u64) {
    let o = (DATA - CODE) as usize;
    for k in 0..REF_DLEN / 8 {
        let w = splitmix(seed.wrapping_mul(0x10000).wrapping_add(k as u64));
        m.data[o + 8 * k..o + 8 * k + 8].copy_from_slice(&w.to_le_bytes());
    }
}

fn fnv(b: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &c in b {
        h = (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3);
    }
    h
}
