//! Instruction-cache maintenance broadcast between the vCPUs of one machine.
//!
//! IC IVAU and IC IALLUIS act on every PE of the inner-shareable domain, so when one vCPU
//! drops translated code (a page, or all of it) every other vCPU must drop its own copy too:
//! Linux patches kernel text (jump labels, alternatives, ftrace) on one CPU, invalidates the
//! instruction cache by VA there and relies on the broadcast, with an IPI for the context
//! synchronisation. Each vCPU compares [`IcBroadcast::epoch`] with what it has applied at
//! every dispatch and catches up from the log; publishing kicks the others out of compiled
//! code, which chains without passing the dispatcher.

use crate::oplog::OpLog;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What one published operation drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcOp {
    /// Code translated from this physical page (an address; low 12 bits clear).
    Page(u64),
    /// All translated code.
    All,
}

/// How many operations a vCPU may fall behind by before it drops all its code instead.
/// Longer than the TLB's log: Linux invalidates a page a cache line at a time (64 IC IVAUs,
/// one operation while nobody has seen it: [`IcBroadcast::publish`]), for each page it maps
/// executable, and a vCPU asleep in WFI meanwhile would otherwise wake to retranslate
/// everything (a Pi 3 boot to init: 3500 pages, 76 such drops with a 64-operation log, 3
/// with 1024 and the repeats left out).
const IC_LOG_LEN: usize = 8192;
/// How far back [`IcBroadcast::publish`] looks for the same operation: a page's lines come
/// one after another.
const REPEAT_WINDOW: usize = 16;

pub struct IcBroadcast {
    /// Sequence number of the newest operation.
    epoch: AtomicU64,
    log: Mutex<Log>,
}

impl Default for IcBroadcast {
    fn default() -> Self {
        Self {
            epoch: AtomicU64::new(0),
            log: Mutex::new(Log {
                ops: OpLog::with_len(IC_LOG_LEN),
                kicks: Vec::new(),
                seen: Vec::new(),
            }),
        }
    }
}

struct Log {
    ops: OpLog<IcOp>,
    /// Every vCPU's interrupt flag, by index.
    kicks: Vec<Option<Arc<AtomicBool>>>,
    /// The newest operation each vCPU has caught up to, by index.
    seen: Vec<u64>,
}

impl IcBroadcast {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Have vCPU `cpu` kicked (through its interrupt flag) when others publish; the newest
    /// operation, from which it catches up.
    pub fn register(&self, cpu: usize, interrupt: Arc<AtomicBool>) -> u64 {
        let mut log = self.lock();
        if log.kicks.len() <= cpu {
            log.kicks.resize(cpu + 1, None);
            log.seen.resize(cpu + 1, 0);
        }
        log.kicks[cpu] = Some(interrupt);
        let newest = self.epoch.load(Ordering::Relaxed);
        log.seen[cpu] = newest;
        newest
    }

    /// Publish `op`, done by vCPU `cpu`, and kick the others. Nothing is published when
    /// `cpu` published the same operation since the newest one any other vCPU has caught up
    /// to: every other vCPU has yet to act on that one, which drops what this would.
    pub fn publish(&self, cpu: usize, op: IcOp) {
        let mut log = self.lock();
        let caught_up = (log.seen.iter().enumerate())
            .filter(|&(i, _)| i != cpu)
            .map(|(_, &s)| s)
            .max()
            .unwrap_or(0);
        if log.ops.did_since(cpu, op, caught_up, REPEAT_WINDOW) {
            return;
        }
        let seq = self.epoch.load(Ordering::Relaxed) + 1;
        log.ops.push(seq, cpu, op);
        self.epoch.store(seq, Ordering::Release);
        for (i, k) in log.kicks.iter().enumerate() {
            if let (true, Some(k)) = (i != cpu, k) {
                k.store(true, Ordering::SeqCst);
            }
        }
    }

    /// The operations of other vCPUs after `*seen` (all of them as one [`IcOp::All`] if the
    /// log no longer reaches back that far); `*seen` ends at the newest.
    pub fn since(&self, cpu: usize, seen: &mut u64) -> Vec<IcOp> {
        let mut log = self.lock();
        let newest = self.epoch.load(Ordering::Relaxed);
        let ops = match log.ops.since(cpu, *seen) {
            Some(missed) => missed.collect(),
            None => vec![IcOp::All],
        };
        *seen = newest;
        if let Some(s) = log.seen.get_mut(cpu) {
            *s = newest;
        }
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn others_see_each_operation_once_and_are_kicked() {
        let b = IcBroadcast::new();
        let (k0, k1) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        b.register(0, k0.clone());
        b.register(1, k1.clone());
        let (mut s0, mut s1) = (0, 0);
        b.publish(0, IcOp::Page(0x4000));
        assert!(k1.load(Ordering::SeqCst) && !k0.load(Ordering::SeqCst));
        assert_eq!(b.since(1, &mut s1), vec![IcOp::Page(0x4000)]);
        assert_eq!(b.since(1, &mut s1), vec![]);
        // The publisher skips its own.
        assert_eq!(b.since(0, &mut s0), vec![]);
        assert_eq!(s0, 1);
    }

    #[test]
    fn a_vcpu_that_fell_behind_the_log_drops_everything() {
        let b = IcBroadcast::new();
        let mut seen = 0;
        for p in 0..=IC_LOG_LEN as u64 {
            b.publish(0, IcOp::Page(p << 12));
        }
        assert_eq!(b.since(1, &mut seen), vec![IcOp::All]);
        assert_eq!(seen, IC_LOG_LEN as u64 + 1);
    }

    #[test]
    fn a_page_invalidated_again_before_anyone_looked_is_published_once() {
        let b = IcBroadcast::new();
        for cpu in 0..3 {
            b.register(cpu, Arc::new(AtomicBool::new(false)));
        }
        let (mut s1, mut s2) = (0, 0);
        // A page a line at a time, another page between: each once.
        for op in [0x4000, 0x4000, 0x5000, 0x4000].map(IcOp::Page) {
            b.publish(0, op);
        }
        assert_eq!(b.epoch(), 2);
        assert_eq!(b.since(1, &mut s1), [0x4000, 0x5000].map(IcOp::Page));
        // vCPU 1 has seen it now (and may have translated the page again): published anew.
        b.publish(0, IcOp::Page(0x4000));
        assert_eq!(b.since(1, &mut s1), [IcOp::Page(0x4000)]);
        // vCPU 2, which looked at none, acts on each page once; so does another publisher.
        b.publish(1, IcOp::Page(0x4000));
        assert_eq!(
            b.since(2, &mut s2),
            [0x4000, 0x5000, 0x4000, 0x4000].map(IcOp::Page)
        );
    }
}
