//! The log behind the machine-wide maintenance broadcasts ([`crate::mmu::TlbBroadcast`] for
//! TLB invalidations, [`crate::icache::IcBroadcast`] for instruction-cache ones): numbered
//! operations and the vCPU that did each, so that every vCPU can catch up on what the
//! others did since it last looked.

use std::collections::VecDeque;

/// How many operations a vCPU may fall behind by before it drops everything instead (by
/// default; see [`OpLog::with_len`]).
pub(crate) const LOG_LEN: usize = 64;

/// Numbered operations, oldest first; the numbers of those it holds are consecutive.
pub(crate) struct OpLog<T> {
    /// (sequence number, issuing vCPU, operation), oldest first.
    ops: VecDeque<(u64, usize, T)>,
    len: usize,
}

impl<T> Default for OpLog<T> {
    fn default() -> Self {
        Self::with_len(LOG_LEN)
    }
}

impl<T> OpLog<T> {
    /// A log that keeps the newest `len` operations.
    pub(crate) fn with_len(len: usize) -> Self {
        Self {
            ops: VecDeque::new(),
            len: len.max(1),
        }
    }
}

impl<T: Copy + PartialEq> OpLog<T> {
    /// Record operation number `seq` (one after the newest) by vCPU `cpu`, forgetting the
    /// oldest beyond the log's length.
    pub(crate) fn push(&mut self, seq: u64, cpu: usize, op: T) {
        if self.ops.len() == self.len {
            self.ops.pop_front();
        }
        self.ops.push_back((seq, cpu, op));
    }

    /// The operations of vCPUs other than `cpu` numbered after `seen`, oldest first; None
    /// when some of them are no longer in the log (the caller must then drop everything).
    pub(crate) fn since(&self, cpu: usize, seen: u64) -> Option<impl Iterator<Item = T> + '_> {
        let behind = self.ops.back().is_some_and(|&(newest, _, _)| newest > seen);
        let first = self.ops.front().map_or(0, |&(first, _, _)| first);
        if behind && first > seen + 1 {
            return None;
        }
        // Numbers are consecutive: the first one after `seen` is at this index.
        let start = (seen + 1).saturating_sub(first).min(self.ops.len() as u64) as usize;
        Some(
            self.ops
                .range(start..)
                .filter(move |&&(_, by, _)| by != cpu)
                .map(|&(_, _, op)| op),
        )
    }

    /// Whether vCPU `cpu` did `op` as one of the newest `window` operations, numbered after
    /// `after`.
    pub(crate) fn did_since(&self, cpu: usize, op: T, after: u64, window: usize) -> bool {
        self.ops
            .iter()
            .rev()
            .take(window)
            .take_while(|&&(seq, _, _)| seq > after)
            .any(|&(_, by, o)| by == cpu && o == op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vcpu_catches_up_on_the_others_operations_until_the_log_has_moved_on() {
        let mut log = OpLog::default();
        for seq in 1..=3 {
            log.push(seq, (seq % 2) as usize, seq * 10);
        }
        let since = |cpu, seen| log.since(cpu, seen).map(|i| i.collect::<Vec<_>>());
        assert_eq!(since(0, 0), Some(vec![10, 30]));
        assert_eq!(since(1, 1), Some(vec![20]));
        assert_eq!(since(1, 3), Some(vec![]));
        let mut log = OpLog::default();
        for seq in 1..=LOG_LEN as u64 + 1 {
            log.push(seq, 0, seq);
        }
        assert!(log.since(1, 0).is_none(), "operation 1 was forgotten");
        assert_eq!(log.since(1, 1).map(|i| i.count()), Some(LOG_LEN));
        assert_eq!(log.since(1, LOG_LEN as u64 + 1).map(|i| i.count()), Some(0));
        assert_eq!(log.since(1, LOG_LEN as u64).map(|i| i.count()), Some(1));
        assert!(log.did_since(0, 60, 59, 8) && !log.did_since(0, 60, 60, 8));
        assert!(!log.did_since(1, 60, 0, 8), "vCPU 1 did none");
        assert!(
            log.did_since(0, 63, 0, 3) && !log.did_since(0, 61, 0, 3),
            "beyond the window"
        );
        let mut short = OpLog::with_len(2);
        for seq in 1..=3 {
            short.push(seq, 0, seq);
        }
        assert!(short.since(1, 0).is_none() && short.since(1, 1).is_some());
    }
}
