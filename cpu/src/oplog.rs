//! The log behind the machine-wide maintenance broadcasts ([`crate::mmu::TlbBroadcast`] for
//! TLB invalidations, [`crate::icache::IcBroadcast`] for instruction-cache ones): numbered
//! operations and the vCPU that did each, so that every vCPU can catch up on what the
//! others did since it last looked.

use std::collections::VecDeque;

/// How many operations a vCPU may fall behind by before it drops everything instead.
pub(crate) const LOG_LEN: usize = 64;

pub(crate) struct OpLog<T> {
    /// (sequence number, issuing vCPU, operation), oldest first.
    ops: VecDeque<(u64, usize, T)>,
}

impl<T> Default for OpLog<T> {
    fn default() -> Self {
        Self {
            ops: VecDeque::new(),
        }
    }
}

impl<T: Copy> OpLog<T> {
    /// Record operation number `seq` (one after the newest) by vCPU `cpu`, forgetting the
    /// oldest beyond [`LOG_LEN`].
    pub(crate) fn push(&mut self, seq: u64, cpu: usize, op: T) {
        if self.ops.len() == LOG_LEN {
            self.ops.pop_front();
        }
        self.ops.push_back((seq, cpu, op));
    }

    /// The operations of vCPUs other than `cpu` numbered after `seen`, oldest first; None
    /// when some of them are no longer in the log (the caller must then drop everything).
    pub(crate) fn since(&self, cpu: usize, seen: u64) -> Option<impl Iterator<Item = T> + '_> {
        let behind = self.ops.back().is_some_and(|&(newest, _, _)| newest > seen);
        match self.ops.front() {
            Some(&(first, _, _)) if behind && first > seen + 1 => None,
            _ => Some(
                self.ops
                    .iter()
                    .filter(move |&&(seq, by, _)| seq > seen && by != cpu)
                    .map(|&(_, _, op)| op),
            ),
        }
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
    }
}
