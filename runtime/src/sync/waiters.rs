//! The waiter queue every companion blocks in.
//!
//! A [`WaitQueue`] is a FIFO of blocked operations: a task waiting for a
//! mutex, a taker waiting for an [`MVar`](super::MVar) to fill, a putter
//! waiting for it to empty, a reader waiting for a stream element. Each
//! waiter may deposit data (a putter's value) and receives a *grant* when
//! it is its turn (a taker's "the value is yours", a condition's signal).
//!
//! # Layout: a first entry, then a linked list threaded through a slab
//!
//! A waiter that finds the queue empty takes the queue's own *first* entry,
//! outside the list: the common case of one waiter at a time (a mailbox's
//! lone taker, a contended mutex's one waiter) costs no slab bookkeeping,
//! neither free list nor links nor count. The others live in a `Vec` of
//! slots (a slab) and are chained in FIFO order by slot indices, so that
//! every operation is O(1) and safe code:
//!
//! * `push` takes the first entry if nobody is queued and it is free, else
//!   a free slot (or grows the slab) and links it at the tail;
//! * `grant_front` grants the first entry if it is queued, else unlinks the
//!   head of the list, and leaves the grant in place;
//! * `cancel` frees the first entry or unlinks a slot from anywhere in the
//!   list (a canceled or dropped waiter leaves the queue at once, not when
//!   its turn comes);
//! * `poll` hands a granted waiter's grant to its owner and frees its
//!   place.
//!
//! The first entry is only taken when nobody is queued, and while it is
//! queued every newcomer goes to the list: a queued first entry is ahead of
//! the whole list, so granting it first keeps the FIFO order.
//!
//! Freed slots go on a free list and are reused, so a queue that has
//! reached its largest size never allocates again: blocking costs no
//! allocation in steady state (the pingpong benchmark blocks twice per
//! round trip, each time in a first entry, which costs less than a slab
//! slot's free list, links and count). Only a first entry's poll is
//! inlined into the companions' futures, a slot's is out of line.
//!
//! # Ownership of a slot
//!
//! `push` returns a [`Ticket`], which is neither `Clone` nor `Copy`: the
//! ticket's owner (the blocked operation's future) is the only one who can
//! free its place (the first entry or a slot), through `poll` (once
//! granted) or `cancel`. Granting only changes the place's state, so a
//! place is never reused while a ticket names it, and no generation
//! counter is needed.
//!
//! # Waking
//!
//! The queue never wakes anybody itself: the granting operations return the
//! waker, and the companion wakes it after releasing its own `RefCell`
//! borrow. With this crate's executor a wake only schedules, but an
//! executor that polled inside `wake` would otherwise re-enter the
//! companion while it is borrowed.

use alloc::vec::Vec;
use core::task::Waker;

/// The end of a list, or no slot.
const NIL: u32 = u32::MAX;

/// The ticket of the first entry (no slot has this index).
const FIRST: u32 = u32::MAX - 1;

/// A waiter: the queue's first entry, or the payload of a slot. The waker
/// and what it holds are fields of their own, written one by one: a
/// whole-enum slot was moved out and back with `mem::replace`, copied
/// through the stack with wide loads of fields just written with narrow
/// stores.
struct Entry<D, G> {
    /// Queued: the waker to wake with the grant, `None` until the
    /// operation's future is first polled (the companions' operations are
    /// eager: they queue when called). Free or granted: `None`.
    waker: Option<Waker>,
    held: Held<D, G>,
}

/// A waiter's place in the slab.
struct Slot<D, G> {
    /// Queued: the waiter before it (`NIL` at the head).
    prev: u32,
    /// Queued: the waiter after it (`NIL` at the tail); free: the next free
    /// slot.
    next: u32,
    entry: Entry<D, G>,
}

enum Held<D, G> {
    Free,
    Queued(D),
    Granted(G),
}

/// The right to a place in a [`WaitQueue`]: held by the waiting future.
#[derive(Debug)]
pub(crate) struct Ticket(u32);

/// What a canceled waiter leaves behind.
pub(crate) enum Left<D, G> {
    /// It was still queued: here is the data it deposited.
    Queued(D),
    /// It had been granted: here is the grant it did not collect, which the
    /// companion passes on (a mutex to the next waiter, ...).
    Granted(G),
}

/// The outcome of polling a waiter.
pub(crate) enum Polled<D, G, W = Ticket> {
    /// Its turn came: the grant.
    Granted(G),
    /// Canceled while queued: it left the queue; the data it deposited.
    Canceled(D),
    /// Still queued: the ticket given back ([`WaitQueue::poll`]), or nothing
    /// ([`WaitQueue::poll_in_place`], which leaves it in place).
    Waiting(W),
}

/// A FIFO of waiters depositing `D` and receiving `G`.
pub(crate) struct WaitQueue<D, G> {
    /// The first entry: queued, it is ahead of every waiter in the list.
    first: Entry<D, G>,
    slots: Vec<Slot<D, G>>,
    free: u32,
    head: u32,
    tail: u32,
    /// How many waiters the list holds (granted ones not counted).
    len: usize,
}

impl<D, G> Default for WaitQueue<D, G> {
    fn default() -> Self {
        WaitQueue {
            first: Entry {
                waker: None,
                held: Held::Free,
            },
            slots: Vec::new(),
            free: NIL,
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

impl<D, G> Entry<D, G> {
    /// Grants a queued waiter `grant(its data)`; returns its waker.
    #[inline]
    fn grant(&mut self, grant: impl FnOnce(D) -> G) -> Option<Waker> {
        let Held::Queued(data) = core::mem::replace(&mut self.held, Held::Free) else {
            unreachable!("only queued waiters are granted")
        };
        self.held = Held::Granted(grant(data));
        self.waker.take()
    }

    /// Polls a waiter in place: takes its grant out if it was granted (the
    /// entry is then free); `Canceled` if it is still queued and the task
    /// is under a cancellation request (the caller removes it); else
    /// records the waker.
    #[inline(always)]
    fn poll(&mut self, waker: &Waker) -> Polled<(), G, ()> {
        match self.held {
            Held::Granted(_) => {
                let Held::Granted(grant) = core::mem::replace(&mut self.held, Held::Free) else {
                    unreachable!("checked above")
                };
                Polled::Granted(grant)
            }
            Held::Queued(_) if crate::cancel_requested() => Polled::Canceled(()),
            Held::Queued(_) => {
                match &mut self.waker {
                    Some(w) if w.will_wake(waker) => {}
                    w => *w = Some(crate::task::clone_waker(waker)),
                }
                Polled::Waiting(())
            }
            Held::Free => unreachable!("a ticket names a live waiter"),
        }
    }
}

impl<D, G> WaitQueue<D, G> {
    /// How many waiters are queued (granted ones not counted).
    pub(crate) fn len(&self) -> usize {
        self.len + usize::from(matches!(self.first.held, Held::Queued(_)))
    }

    /// Queues a waiter at the tail: in the first entry if nobody is queued
    /// and it is free.
    #[inline]
    pub(crate) fn push(&mut self, data: D, waker: Option<&Waker>) -> Ticket {
        if let Held::Free = self.first.held
            && self.head == NIL
        {
            debug_assert!(self.first.waker.is_none());
            if let Some(waker) = waker {
                self.first.waker = Some(crate::task::clone_waker(waker));
            }
            self.first.held = Held::Queued(data);
            return Ticket(FIRST);
        }
        self.push_slot(data, waker)
    }

    /// Queues a waiter in a slot linked at the tail of the list.
    #[inline(never)]
    fn push_slot(&mut self, data: D, waker: Option<&Waker>) -> Ticket {
        let waker = waker.map(crate::task::clone_waker);
        let entry = Entry {
            waker,
            held: Held::Queued(data),
        };
        let index = self.free;
        match self.slots.get_mut(index as usize) {
            Some(slot) => {
                debug_assert!(matches!(slot.entry.held, Held::Free));
                self.free = slot.next;
                *slot = Slot {
                    prev: self.tail,
                    next: NIL,
                    entry,
                };
                self.link_tail(index);
                Ticket(index)
            }
            None => {
                let index = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&index| index < FIRST)
                    .expect("fewer than 2^32 - 2 waiters");
                self.slots.push(Slot {
                    prev: self.tail,
                    next: NIL,
                    entry,
                });
                self.link_tail(index);
                Ticket(index)
            }
        }
    }

    /// Links a slot just filled at the tail.
    fn link_tail(&mut self, index: u32) {
        if self.tail == NIL {
            self.head = index;
        } else {
            self.slots[self.tail as usize].next = index;
        }
        self.tail = index;
        self.len += 1;
    }

    /// Grants the first waiter `grant(its data)`; returns its waker (to
    /// wake once the caller's borrows are released), or `None` with no
    /// waiter (then `grant` is not called).
    #[inline]
    pub(crate) fn grant_front(&mut self, grant: impl FnOnce(D) -> G) -> Option<Option<Waker>> {
        if let Held::Queued(_) = self.first.held {
            return Some(self.first.grant(grant));
        }
        if self.head == NIL {
            return None;
        }
        Some(self.grant_head(grant))
    }

    /// Grants the head of the list (there is one) and unlinks it.
    #[inline(never)]
    fn grant_head(&mut self, grant: impl FnOnce(D) -> G) -> Option<Waker> {
        let index = self.head;
        let slot = &mut self.slots[index as usize];
        let waker = slot.entry.grant(grant);
        // The head has no predecessor: unlinking it only touches its
        // successor.
        let next = slot.next;
        self.head = next;
        if next == NIL {
            self.tail = NIL;
        } else {
            self.slots[next as usize].prev = NIL;
        }
        self.len -= 1;
        waker
    }

    /// Polls a waiter: collects its grant (freeing its place) if it was
    /// granted; leaves the queue if it is still queued and the task is
    /// under a cancellation request ([`crate::cancel_requested`]: a grant
    /// that came first wins over the cancellation, as a resolved Lwt promise
    /// ignores `cancel`); else records the waker and gives the ticket back.
    #[inline]
    pub(crate) fn poll(&mut self, ticket: Ticket, waker: &Waker) -> Polled<D, G> {
        match self.poll_in_place(&ticket, waker) {
            Polled::Granted(grant) => Polled::Granted(grant),
            Polled::Canceled(data) => Polled::Canceled(data),
            Polled::Waiting(()) => Polled::Waiting(ticket),
        }
    }

    /// [`poll`](Self::poll) with the ticket read where its future keeps
    /// it: the future's stage is not moved out and back, and the waiter is
    /// looked up once for the grant, the cancellation check and the waker.
    /// Once it returns `Granted` or `Canceled` its place is free and the
    /// ticket is spent: the caller drops it at once.
    #[inline(always)]
    pub(crate) fn poll_in_place(&mut self, ticket: &Ticket, waker: &Waker) -> Polled<D, G, ()> {
        if ticket.0 != FIRST {
            return self.poll_slot(ticket.0, waker);
        }
        match self.first.poll(waker) {
            Polled::Granted(grant) => Polled::Granted(grant),
            Polled::Canceled(()) => Polled::Canceled(self.leave(FIRST)),
            Polled::Waiting(()) => Polled::Waiting(()),
        }
    }

    /// [`poll_in_place`](Self::poll_in_place) for a waiter in a slot.
    #[cold]
    #[inline(never)]
    fn poll_slot(&mut self, index: u32, waker: &Waker) -> Polled<D, G, ()> {
        let slot = &mut self.slots[index as usize];
        match slot.entry.poll(waker) {
            Polled::Granted(grant) => {
                slot.next = self.free;
                self.free = index;
                Polled::Granted(grant)
            }
            Polled::Canceled(()) => Polled::Canceled(self.leave(index)),
            Polled::Waiting(()) => Polled::Waiting(()),
        }
    }

    /// A queued waiter leaving on a cancellation request: frees its place
    /// and returns its data.
    #[inline(never)]
    fn leave(&mut self, index: u32) -> D {
        match self.remove(index) {
            Held::Queued(data) => data,
            _ => unreachable!("checked by the caller"),
        }
    }

    /// Takes a waiter out of the queue, wherever it is, and frees its
    /// place.
    #[inline]
    pub(crate) fn cancel(&mut self, ticket: Ticket) -> Left<D, G> {
        match self.remove(ticket.0) {
            Held::Queued(data) => Left::Queued(data),
            Held::Granted(g) => Left::Granted(g),
            Held::Free => unreachable!("a ticket names a live waiter"),
        }
    }

    /// Takes a waiter out of the queue (unlinking it if it is a queued
    /// slot), drops its waker and frees its place; returns what it held.
    fn remove(&mut self, index: u32) -> Held<D, G> {
        if index == FIRST {
            drop(self.first.waker.take());
            return core::mem::replace(&mut self.first.held, Held::Free);
        }
        if let Held::Queued(_) = self.slots[index as usize].entry.held {
            self.unlink(index);
        }
        let slot = &mut self.slots[index as usize];
        drop(slot.entry.waker.take());
        slot.next = self.free;
        self.free = index;
        core::mem::replace(&mut slot.entry.held, Held::Free)
    }

    /// Unlinks a queued slot; the caller frees it.
    fn unlink(&mut self, index: u32) {
        let slot = &self.slots[index as usize];
        let (prev, next) = (slot.prev, slot.next);
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Grants the queue's front its own data; returns it.
    fn grant(queue: &mut WaitQueue<u32, u32>) -> Option<u32> {
        let mut granted = None;
        queue.grant_front(|data| {
            granted = Some(data);
            data
        })?;
        granted
    }

    fn collect(queue: &mut WaitQueue<u32, u32>, ticket: Ticket) -> u32 {
        match queue.poll(ticket, Waker::noop()) {
            Polled::Granted(grant) => grant,
            _ => panic!("not granted"),
        }
    }

    #[test]
    fn the_first_entry_stays_in_fifo_order_with_the_list() {
        let mut queue = WaitQueue::default();
        let a = queue.push(1, None);
        let b = queue.push(2, Some(Waker::noop()));
        assert_eq!(queue.len(), 2);
        assert_eq!(grant(&mut queue), Some(1));
        // `a` holds its grant: the newcomer goes behind `b`.
        let c = queue.push(3, None);
        assert_eq!(queue.len(), 2);
        assert!(matches!(queue.cancel(a), Left::Granted(1)));
        // The first entry is free, but `b` and `c` wait in the list.
        let d = queue.push(4, None);
        assert_eq!(grant(&mut queue), Some(2));
        assert_eq!(grant(&mut queue), Some(3));
        assert_eq!(collect(&mut queue, c), 3);
        assert_eq!(collect(&mut queue, b), 2);
        assert_eq!(grant(&mut queue), Some(4));
        assert_eq!(grant(&mut queue), None);
        assert_eq!(collect(&mut queue, d), 4);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_canceled_first_entry_leaves_the_list_ahead() {
        let mut queue = WaitQueue::default();
        let a = queue.push(1, None);
        let b = queue.push(2, None);
        assert!(matches!(queue.cancel(a), Left::Queued(1)));
        assert_eq!(queue.len(), 1);
        let c = queue.push(3, None);
        assert!(matches!(queue.poll(c, Waker::noop()), Polled::Waiting(_)));
        assert_eq!(grant(&mut queue), Some(2));
        assert_eq!(grant(&mut queue), Some(3));
        assert_eq!(collect(&mut queue, b), 2);
        // Nobody is queued: the first entry is taken again.
        let d = queue.push(4, None);
        assert_eq!(d.0, FIRST);
        assert_eq!(grant(&mut queue), Some(4));
        assert_eq!(collect(&mut queue, d), 4);
    }
}
