//! The timer queue: a hierarchical timing wheel over a slab of timers.
//!
//! Tokio's design, at nanosecond resolution. Level `l` has 64 slots of
//! `64^l` ns each, so level 0 covers 64 ns one nanosecond per slot, level 1
//! 4 µs, ... and level 10 the rest of the `u64` range. A timer goes to the
//! level of the highest 6-bit group in which its deadline differs from the
//! wheel's current time (`elapsed`), in the slot that group selects; a
//! deadline already past goes to an `expired` list. Slots are intrusive
//! doubly-linked FIFO lists threaded through the slab, and each level has a
//! 64-bit occupancy mask, so:
//!
//! * arming and canceling are O(1) and allocate nothing once the slab has
//!   grown; a canceled timer is unlinked and its slot freed at once (not
//!   when it would have expired);
//! * the next deadline is the earliest deadline of the first occupied slot
//!   of the lowest occupied level (lower levels always expire first). A
//!   level-0 slot holds one deadline; a higher slot remembers its earliest
//!   deadline (recomputed by one scan of the slot when its earliest timer is
//!   canceled). When that deadline comes, the slot is *cascaded*: its timers
//!   move to lower levels, down to level 0 where they fire, so the platform
//!   is asked to wait exactly until the earliest deadline and no longer;
//! * all the timers of a level-0 slot share one deadline and fire together,
//!   in the order they were armed (cascading keeps list order), which keeps
//!   simulated runs readable.
//!
//! A timer already due when its slot is cascaded (the loop was late, as a
//! busy real-time loop is) is taken out there instead of moving down level
//! by level; the due timers of one expiry are then fired in deadline order.
//! Timers sharing a deadline always share a list, so they are taken
//! together, in list order, which the (stable) sort keeps: the order is the
//! same as if each had cascaded down to level 0, for less work (a workload
//! of 100,000 sleeps over 20 ms cascaded each timer 3.3 times).

use alloc::vec::Vec;
use core::task::Waker;

use crate::platform::Instant;

const LEVELS: usize = 11;
const SLOTS: usize = 64;
const BITS: u32 = 6;
const NIL: u32 = u32::MAX;
/// Where an armed timer lives when its deadline has passed.
const EXPIRED: u32 = u32::MAX;

/// A timer's place in the wheel.
enum Slot {
    Free {
        next: u32,
    },
    Armed {
        deadline: u64,
        /// `level * SLOTS + slot`, or `EXPIRED`.
        list: u32,
        prev: u32,
        next: u32,
        waker: Option<Waker>,
    },
    Fired,
}

/// A FIFO list of armed timers.
#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

const EMPTY_LIST: List = List {
    head: NIL,
    tail: NIL,
};

/// The pending timers of one executor.
pub(crate) struct Timers {
    elapsed: u64,
    /// The slot lists, allocated on the first timer (the executor is built
    /// on the stack, which may be small on bare metal).
    lists: Vec<List>,
    occupied: [u64; LEVELS],
    /// The earliest deadline of each slot of levels above 0, or 0 when it
    /// is not known (recomputed on demand).
    earliest: Vec<u64>,
    expired: List,
    /// The due timers of the expiry under way (deadline, slot), kept to
    /// reuse the buffer.
    due: Vec<(u64, u32)>,
    slots: Vec<Slot>,
    free: u32,
    armed: usize,
    /// The earliest deadline, if known: until then `expire` has nothing to
    /// do, which makes the rounds of a busy loop cheap.
    soonest: Option<u64>,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            elapsed: 0,
            lists: Vec::new(),
            occupied: [0; LEVELS],
            earliest: Vec::new(),
            expired: EMPTY_LIST,
            due: Vec::new(),
            slots: Vec::new(),
            free: NIL,
            armed: 0,
            soonest: None,
        }
    }
}

impl Timers {
    pub(crate) fn is_empty(&self) -> bool {
        self.armed == 0
    }

    /// How many timers are armed.
    pub(crate) fn len(&self) -> usize {
        self.armed
    }

    /// The deadline of the earliest timer.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        let next = self.find_next_deadline();
        self.soonest = Some(next.map_or(u64::MAX, Instant::as_nanos));
        next
    }

    fn find_next_deadline(&mut self) -> Option<Instant> {
        if self.expired.head != NIL {
            return Some(Instant::from_nanos(self.elapsed));
        }
        let (level, slot, start) = self.next_slot()?;
        if level == 0 {
            return Some(Instant::from_nanos(start));
        }
        let list = level * SLOTS + slot;
        if self.earliest[list] == 0 {
            self.earliest[list] = self.scan_earliest(list as u32);
        }
        Some(Instant::from_nanos(self.earliest[list]))
    }

    /// The earliest deadline in `list` (not empty).
    fn scan_earliest(&self, list: u32) -> u64 {
        let mut earliest = u64::MAX;
        let mut id = self.lists[list as usize].head;
        while let Some(Slot::Armed { deadline, next, .. }) = self.slots.get(id as usize) {
            earliest = earliest.min(*deadline);
            id = *next;
        }
        earliest
    }

    /// The first occupied slot of the lowest occupied level: its level,
    /// index and start.
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        (0..LEVELS).find_map(|level| {
            self.next_slot_of(level)
                .map(|(slot, start)| (level, slot, start))
        })
    }

    /// The first occupied slot of `level` and the instant it starts.
    fn next_slot_of(&self, level: usize) -> Option<(usize, u64)> {
        let occupied = self.occupied[level];
        if occupied == 0 {
            return None;
        }
        let shift = BITS * level as u32;
        let current = ((self.elapsed >> shift) % SLOTS as u64) as u32;
        // Every timer of a level shares the bits above it with `elapsed`,
        // so its slot is at or after the current one.
        let slot = (occupied >> current).trailing_zeros() + current;
        let span = shift + BITS;
        let base = if span >= 64 {
            0
        } else {
            self.elapsed >> span << span
        };
        Some((slot as usize, base + (u64::from(slot) << shift)))
    }

    /// Arms a timer; returns its slot.
    pub(crate) fn insert(&mut self, deadline: Instant, waker: Waker) -> u32 {
        if self.lists.is_empty() {
            self.lists = alloc::vec![EMPTY_LIST; LEVELS * SLOTS];
            self.earliest = alloc::vec![0; LEVELS * SLOTS];
        }
        let id = match self.free {
            NIL => {
                self.slots.push(Slot::Fired);
                (self.slots.len() - 1) as u32
            }
            id => {
                let Slot::Free { next } = self.slots[id as usize] else {
                    unreachable!("the free list holds free slots")
                };
                self.free = next;
                id
            }
        };
        self.slots[id as usize] = Slot::Armed {
            deadline: deadline.as_nanos(),
            list: NIL,
            prev: NIL,
            next: NIL,
            waker: Some(waker),
        };
        self.armed += 1;
        self.soonest = match self.soonest {
            // The only timer: its deadline is the earliest.
            _ if self.armed == 1 => Some(deadline.as_nanos()),
            soonest => soonest.map(|s| s.min(deadline.as_nanos())),
        };
        self.link(id, deadline.as_nanos());
        id
    }

    /// Whether the timer in `id` has fired.
    pub(crate) fn fired(&self, id: u32) -> bool {
        matches!(self.slots.get(id as usize), Some(Slot::Fired))
    }

    /// Replaces the waker of an armed timer, unless it would wake the same
    /// task.
    pub(crate) fn set_waker(&mut self, id: u32, new: &Waker) {
        if let Some(Slot::Armed { waker: Some(w), .. }) = self.slots.get_mut(id as usize)
            && !w.will_wake(new)
        {
            w.clone_from(new);
        }
    }

    /// Cancels or forgets the timer in `id`, freeing it at once. Unknown
    /// slots are ignored (the queue may have been torn down).
    pub(crate) fn remove(&mut self, id: u32) {
        match self.slots.get(id as usize) {
            Some(&Slot::Armed { deadline, .. }) => {
                self.unlink(id);
                self.armed -= 1;
                if self.armed == 0 {
                    self.soonest = Some(u64::MAX);
                } else if self.soonest == Some(deadline) {
                    self.soonest = None;
                }
            }
            Some(Slot::Fired) => {}
            Some(Slot::Free { .. }) | None => return,
        }
        self.slots[id as usize] = Slot::Free { next: self.free };
        self.free = id;
    }

    /// Whether [`Timers::expire`] may find timers due at `now`: false only
    /// when the earliest deadline is known and later. Inlined, so that the
    /// rounds of a busy loop with a far timer armed skip the call.
    #[inline]
    pub(crate) fn may_expire(&self, now: Instant) -> bool {
        self.soonest.is_none_or(|soonest| now.as_nanos() >= soonest)
    }

    /// Fires every timer whose deadline is at or before `now`, in deadline
    /// order, pushing their wakers to `woken`.
    pub(crate) fn expire(&mut self, now: Instant, woken: &mut Vec<Waker>) {
        let soonest = match self.soonest {
            Some(soonest) => soonest,
            None => self.next_deadline().map_or(u64::MAX, Instant::as_nanos),
        };
        let now = now.as_nanos();
        if now < soonest {
            // Nothing is due; `elapsed` stays, the wheel is unchanged.
            return;
        }
        self.soonest = None;
        self.fire_list(EXPIRED, woken);
        let mut due = core::mem::take(&mut self.due);
        while let Some((level, slot, start)) =
            self.next_slot().filter(|&(_, _, start)| start <= now)
        {
            self.elapsed = self.elapsed.max(start);
            self.take_due((level * SLOTS + slot) as u32, now, &mut due);
        }
        self.elapsed = self.elapsed.max(now);
        due.sort_by_key(|&(deadline, _)| deadline);
        for (_, id) in due.drain(..) {
            self.fire(id, woken);
        }
        self.due = due;
    }

    /// Fires armed timer `id`, already unlinked.
    fn fire(&mut self, id: u32, woken: &mut Vec<Waker>) {
        self.armed -= 1;
        if let Slot::Armed {
            waker: Some(waker), ..
        } = core::mem::replace(&mut self.slots[id as usize], Slot::Fired)
        {
            woken.push(waker);
        }
    }

    /// Fires the timers of `list`.
    fn fire_list(&mut self, list: u32, woken: &mut Vec<Waker>) {
        while let Some(id) = self.pop_front(list) {
            self.fire(id, woken);
        }
    }

    /// Empties `list`, whose slot has started: the timers due at `now` go
    /// to `due`, the others (cascaded) to the lists their deadlines now
    /// select.
    fn take_due(&mut self, list: u32, now: u64, due: &mut Vec<(u64, u32)>) {
        while let Some(id) = self.pop_front(list) {
            let Slot::Armed { deadline, .. } = self.slots[id as usize] else {
                unreachable!("lists hold armed timers")
            };
            if deadline <= now {
                due.push((deadline, id));
            } else {
                self.link(id, deadline);
            }
        }
    }

    /// The list a deadline belongs in, relative to `elapsed`.
    fn list_for(&self, deadline: u64) -> u32 {
        if deadline < self.elapsed {
            return EXPIRED;
        }
        let differing = (deadline ^ self.elapsed) | 1;
        let level = (63 - differing.leading_zeros()) / BITS;
        let slot = (deadline >> (BITS * level)) % SLOTS as u64;
        level * SLOTS as u32 + slot as u32
    }

    fn list(&mut self, list: u32) -> &mut List {
        if list == EXPIRED {
            &mut self.expired
        } else {
            &mut self.lists[list as usize]
        }
    }

    /// Appends armed timer `id` to the list its deadline selects.
    fn link(&mut self, id: u32, deadline: u64) {
        let list = self.list_for(deadline);
        let tail = self.list(list).tail;
        if let Slot::Armed {
            list: l,
            prev,
            next,
            ..
        } = &mut self.slots[id as usize]
        {
            (*l, *prev, *next) = (list, tail, NIL);
        }
        match tail {
            NIL => self.list(list).head = id,
            tail => self.set_next(tail, id),
        }
        self.list(list).tail = id;
        if list != EXPIRED {
            self.occupied[list as usize / SLOTS] |= 1 << (list as usize % SLOTS);
            let earliest = &mut self.earliest[list as usize];
            if tail == NIL {
                *earliest = deadline;
            } else if *earliest != 0 {
                *earliest = (*earliest).min(deadline);
            }
        }
    }

    /// Removes armed timer `id` from its list.
    fn unlink(&mut self, id: u32) {
        let Slot::Armed {
            list,
            prev,
            next,
            deadline,
            ..
        } = self.slots[id as usize]
        else {
            unreachable!("only armed timers are linked")
        };
        match prev {
            NIL => self.list(list).head = next,
            prev => self.set_next(prev, next),
        }
        match next {
            NIL => self.list(list).tail = prev,
            next => self.set_prev(next, prev),
        }
        if list != EXPIRED {
            if self.list(list).head == NIL {
                self.occupied[list as usize / SLOTS] &= !(1 << (list as usize % SLOTS));
                self.earliest[list as usize] = 0;
            } else if self.earliest[list as usize] == deadline {
                self.earliest[list as usize] = 0;
            }
        }
    }

    fn pop_front(&mut self, list: u32) -> Option<u32> {
        let id = self.list(list).head;
        if id == NIL {
            return None;
        }
        self.unlink(id);
        Some(id)
    }

    fn set_next(&mut self, id: u32, to: u32) {
        if let Slot::Armed { next, .. } = &mut self.slots[id as usize] {
            *next = to;
        }
    }

    fn set_prev(&mut self, id: u32, to: u32) {
        if let Slot::Armed { prev, .. } = &mut self.slots[id as usize] {
            *prev = to;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn waker() -> Waker {
        Waker::noop().clone()
    }

    /// Runs the wheel like the event loop does: jump to the next deadline,
    /// expire; returns (instant, timer) in firing order.
    fn drain(timers: &mut Timers, ids: &[(u32, u64)]) -> Vec<(u64, u64)> {
        let mut fired = Vec::new();
        while let Some(next) = timers.next_deadline() {
            let mut woken = Vec::new();
            timers.expire(next, &mut woken);
            for (id, name) in ids {
                if timers.fired(*id) {
                    fired.push((next.as_nanos(), *name));
                    timers.remove(*id);
                }
            }
        }
        fired
    }

    #[test]
    fn timers_fire_at_their_exact_deadlines_in_order() {
        let mut timers = Timers::default();
        let deadlines = [
            5_000_000_000u64,
            1,
            64,
            63,
            4096,
            1_000_000_007,
            u64::MAX / 3,
            64,
        ];
        let ids: Vec<_> = deadlines
            .iter()
            .map(|&d| (timers.insert(Instant::from_nanos(d), waker()), d))
            .collect();
        let fired = drain(&mut timers, &ids);
        let mut expected: Vec<_> = deadlines.iter().map(|&d| (d, d)).collect();
        expected.sort();
        assert_eq!(fired, expected);
        assert!(timers.is_empty());
    }

    #[test]
    fn timers_due_at_a_late_expiry_fire_in_deadline_order_ties_in_arming_order() {
        /// A waker told apart from the others by its address.
        struct Tag(core::sync::atomic::AtomicBool);
        impl alloc::task::Wake for Tag {
            fn wake(self: alloc::sync::Arc<Self>) {
                self.0.store(true, core::sync::atomic::Ordering::Relaxed);
            }
        }
        let mut timers = Timers::default();
        // Deadlines over three levels, with many ties; an expiry on time
        // first, so that lists at several levels hold timers.
        let mut woken = Vec::new();
        timers.expire(Instant::from_nanos(1_000), &mut woken);
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut armed = Vec::new();
        for _ in 0..5_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let deadline = 1_000 + (rng % 2_000) * 1_500;
            let waker = Waker::from(alloc::sync::Arc::new(Tag(Default::default())));
            armed.push((deadline, waker.data()));
            timers.insert(Instant::from_nanos(deadline), waker);
        }
        timers.expire(Instant::from_nanos(2_000_000), &mut woken);
        timers.expire(Instant::from_nanos(4_000_000), &mut woken);
        assert!(timers.is_empty());
        // Stable: equal deadlines keep the order they were armed in.
        armed.sort_by_key(|&(deadline, _)| deadline);
        let expected: Vec<_> = armed.iter().map(|&(_, data)| data).collect();
        assert_eq!(woken.iter().map(Waker::data).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn a_deadline_in_the_past_fires_at_the_next_expiry() {
        let mut timers = Timers::default();
        let mut woken = Vec::new();
        timers.expire(Instant::from_nanos(1_000), &mut woken);
        let id = timers.insert(Instant::from_nanos(10), waker());
        assert!(timers.next_deadline() <= Some(Instant::from_nanos(1_000)));
        timers.expire(Instant::from_nanos(1_000), &mut woken);
        assert!(timers.fired(id));
        assert_eq!(woken.len(), 1);
    }

    #[test]
    fn removing_timers_frees_their_slots_for_reuse() {
        let mut timers = Timers::default();
        let a = timers.insert(Instant::from_nanos(100), waker());
        let b = timers.insert(Instant::from_nanos(100), waker());
        timers.remove(a);
        assert_eq!(timers.len(), 1);
        let c = timers.insert(Instant::from_nanos(7), waker());
        assert_eq!(c, a);
        timers.remove(b);
        timers.remove(c);
        assert!(timers.is_empty());
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn the_wheel_agrees_with_a_sorted_list_under_random_operations() {
        let mut timers = Timers::default();
        // The model: (deadline, arming order, id) of armed timers.
        let mut model: Vec<(u64, u64, u32)> = Vec::new();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut now = 0u64;
        for order in 0..20_000u64 {
            match next() % 4 {
                0 | 1 => {
                    let span = [70u64, 5_000, 300_000, 1 << 40][(next() % 4) as usize];
                    let deadline = now + next() % span;
                    model.push((
                        deadline,
                        order,
                        timers.insert(Instant::from_nanos(deadline), waker()),
                    ));
                }
                2 if !model.is_empty() => {
                    let (_, _, id) = model.swap_remove((next() % model.len() as u64) as usize);
                    timers.remove(id);
                }
                _ => {
                    let Some(deadline) = timers.next_deadline() else {
                        continue;
                    };
                    model.sort();
                    assert_eq!(deadline.as_nanos(), model[0].0.max(now));
                    now = deadline.as_nanos();
                    let mut woken = Vec::new();
                    timers.expire(deadline, &mut woken);
                    let due: Vec<_> = model.iter().take_while(|t| t.0 <= now).copied().collect();
                    model.drain(..due.len());
                    assert_eq!(woken.len(), due.len());
                    for (_, _, id) in due {
                        assert!(timers.fired(id));
                        timers.remove(id);
                    }
                }
            }
            assert_eq!(timers.len(), model.len());
        }
    }
}
