//! One measuring round of a worker: how many frames each connection got, when the last one
//! completed a count, and the latency of every frame.

use std::collections::BTreeMap;

use crate::clock::now_us;
use crate::control::RoundStats;
use crate::hist::Histogram;

use super::Slot;

#[derive(Debug)]
pub(crate) struct Round {
    pub(crate) members: u32,
    pub(crate) expect: Option<u32>,
    /// `reached[k]`: members that received at least `k` frames.
    reached: Vec<u32>,
    pub(crate) min_complete: u32,
    done: bool,
    done_at_us: Option<u64>,
    frames: u64,
    first_recv_us: u64,
    last_recv_us: u64,
    duplicates: u64,
    lost: u32,
    pub(crate) closes: BTreeMap<String, u32>,
    latency: Histogram,
}

/// What a change to the round means for the orchestrator.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Advance {
    pub(crate) advanced: bool,
    pub(crate) done: bool,
    pub(crate) at_us: u64,
}

impl Round {
    pub(crate) fn new(members: u32, expect: Option<u32>) -> Self {
        Self {
            members,
            expect,
            reached: vec![members],
            min_complete: 0,
            done: false,
            done_at_us: None,
            frames: 0,
            first_recv_us: 0,
            last_recv_us: 0,
            duplicates: 0,
            lost: 0,
            closes: BTreeMap::new(),
            latency: Histogram::default(),
        }
    }

    /// A member's count went up to `received`.
    pub(crate) fn on_frame(
        &mut self,
        received: u32,
        member: bool,
        duplicate: bool,
        stamp: Option<u64>,
    ) -> Advance {
        let now = now_us();
        self.frames += 1;
        if self.first_recv_us == 0 {
            self.first_recv_us = now;
        }
        self.last_recv_us = now;
        if duplicate {
            self.duplicates += 1;
        }
        if let Some(stamp) = stamp {
            self.latency.record(now.saturating_sub(stamp));
        }
        if !member {
            return Advance::default();
        }
        let k = received as usize;
        if self.reached.len() <= k {
            self.reached.resize(k + 1, 0);
        }
        self.reached[k] += 1;
        self.check_at(now)
    }

    /// A connection joined the round with nothing received yet.
    pub(crate) fn join(&mut self) {
        self.members += 1;
        self.reached[0] += 1;
    }

    /// A member that had received `received` frames left the round.
    pub(crate) fn leave(&mut self, received: u32) -> Advance {
        self.members = self.members.saturating_sub(1);
        self.lost += 1;
        for count in self.reached.iter_mut().take(received as usize + 1) {
            *count = count.saturating_sub(1);
        }
        self.check()
    }

    pub(crate) fn check(&mut self) -> Advance {
        self.check_at(now_us())
    }

    fn check_at(&mut self, now: u64) -> Advance {
        let mut advance = Advance { at_us: now, ..Advance::default() };
        if self.members > 0 {
            while self.reached.get(self.min_complete as usize + 1) == Some(&self.members) {
                self.min_complete += 1;
                advance.advanced = true;
            }
        }
        if !self.done {
            if let Some(expect) = self.expect {
                if self.members == 0 || self.min_complete >= expect {
                    self.done = true;
                    self.done_at_us = Some(now);
                    advance.done = true;
                }
            }
        }
        advance
    }

    pub(crate) fn stats(&self, slots: &[Slot]) -> RoundStats {
        let over = match self.expect {
            Some(expect) => slots.iter().filter(|s| s.in_round && s.received > expect).count(),
            None => 0,
        };
        RoundStats {
            members: self.members,
            frames: self.frames,
            min_complete: self.min_complete,
            done_at_us: self.done_at_us,
            first_recv_us: self.first_recv_us,
            last_recv_us: self.last_recv_us,
            over: over as u32,
            duplicates: self.duplicates,
            lost: self.lost,
            closes: self.closes.clone(),
            latency: self.latency.clone(),
            gaps: slots.iter().map(|s| s.gaps).sum(),
            min_last_seq: slots.iter().filter(|s| s.wanted).map(|s| s.last_seq).min(),
            max_last_seq: slots.iter().map(|s| s.last_seq).max().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_when_every_member_has_the_count() {
        let mut round = Round::new(2, Some(2));
        assert!(!round.on_frame(1, true, false, None).advanced);
        assert!(round.on_frame(1, true, false, None).advanced);
        assert_eq!(round.min_complete, 1);
        assert!(!round.on_frame(2, true, false, None).done);
        let last = round.on_frame(2, true, false, None);
        assert!(last.done && round.min_complete == 2);
    }

    #[test]
    fn a_member_that_joins_holds_the_round_until_it_has_the_count() {
        let mut round = Round::new(1, Some(1));
        round.join();
        assert!(!round.on_frame(1, true, false, None).done);
        assert!(round.on_frame(1, true, false, None).done);
        assert_eq!(round.members, 2);
    }

    #[test]
    fn a_lost_member_no_longer_holds_the_round() {
        let mut round = Round::new(2, Some(1));
        round.on_frame(1, true, false, None);
        let advance = round.leave(0);
        assert!(advance.done);
        assert_eq!(round.lost, 1);
    }
}
