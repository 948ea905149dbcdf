//! The waiter queue every companion blocks in.
//!
//! A [`WaitQueue`] is a FIFO of blocked operations: a task waiting for a
//! mutex, a taker waiting for an [`MVar`](super::MVar) to fill, a putter
//! waiting for it to empty, a reader waiting for a stream element. Each
//! waiter may deposit data (a putter's value) and receives a *grant* when
//! it is its turn (a taker's "the value is yours", a condition's signal).
//!
//! # Layout: a linked list threaded through a slab
//!
//! The waiters live in a `Vec` of slots (a slab) and are chained in FIFO
//! order by slot indices, so that every operation is O(1) and safe code:
//!
//! * `push` takes a free slot (or grows the slab) and links it at the tail;
//! * `grant_front` unlinks the head and leaves the grant in its slot;
//! * `cancel` unlinks a slot from anywhere in the list (a canceled or
//!   dropped waiter leaves the queue at once, not when its turn comes);
//! * `poll` hands a granted slot's grant to its owner and frees the slot.
//!
//! Freed slots go on a free list and are reused, so a queue that has
//! reached its largest size never allocates again: blocking costs no
//! allocation in steady state (the pingpong benchmark blocks twice per
//! round trip).
//!
//! # Ownership of a slot
//!
//! `push` returns a [`Ticket`], which is neither `Clone` nor `Copy`: the
//! ticket's owner (the blocked operation's future) is the only one who can
//! free the slot, through `poll` (once granted) or `cancel`. Granting only
//! changes the slot's state, so a slot index is never reused while a ticket
//! names it, and no generation counter is needed.
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

enum Slot<D, G> {
    Free {
        next: u32,
    },
    Queued {
        prev: u32,
        next: u32,
        /// `None` until the operation's future is first polled (the
        /// companions' operations are eager: they queue when called).
        waker: Option<Waker>,
        data: D,
    },
    Granted(G),
}

/// The right to a slot of a [`WaitQueue`]: held by the waiting future.
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
pub(crate) enum Polled<D, G> {
    /// Its turn came: the grant.
    Granted(G),
    /// Canceled while queued: it left the queue; the data it deposited.
    Canceled(D),
    /// Still queued.
    Waiting(Ticket),
}

/// A FIFO of waiters depositing `D` and receiving `G`.
pub(crate) struct WaitQueue<D, G> {
    slots: Vec<Slot<D, G>>,
    free: u32,
    head: u32,
    tail: u32,
    len: usize,
}

impl<D, G> Default for WaitQueue<D, G> {
    fn default() -> Self {
        WaitQueue {
            slots: Vec::new(),
            free: NIL,
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

impl<D, G> WaitQueue<D, G> {
    /// How many waiters are queued (granted ones not counted).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Queues a waiter at the tail.
    #[inline]
    pub(crate) fn push(&mut self, data: D, waker: Option<&Waker>) -> Ticket {
        let (index, tail) = (self.free, self.tail);
        let waker = waker.cloned();
        // The free slot is checked first and the waiter written straight
        // into it: built aside and then copied, its fields, just written
        // with narrow stores, were read back with wide loads that the
        // stores could not forward to (a stall per push).
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return self.push_new(data, waker);
        };
        let Slot::Free { next } = *slot else {
            unreachable!("the free list holds free slots")
        };
        *slot = Slot::Queued {
            prev: tail,
            next: NIL,
            waker,
            data,
        };
        self.free = next;
        self.link_tail(index);
        Ticket(index)
    }

    /// Queues a waiter in a new slot, with no free slot left.
    #[inline(never)]
    fn push_new(&mut self, data: D, waker: Option<Waker>) -> Ticket {
        let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 waiters");
        self.slots.push(Slot::Queued {
            prev: self.tail,
            next: NIL,
            waker,
            data,
        });
        self.link_tail(index);
        Ticket(index)
    }

    /// Links a slot just filled at the tail.
    #[inline]
    fn link_tail(&mut self, index: u32) {
        if self.tail == NIL {
            self.head = index;
        } else {
            self.set_next(self.tail, index);
        }
        self.tail = index;
        self.len += 1;
    }

    /// Grants the first waiter `grant(its data)`; returns its waker (to
    /// wake once the caller's borrows are released), or `None` with no
    /// waiter (then `grant` is not called).
    #[inline]
    pub(crate) fn grant_front(&mut self, grant: impl FnOnce(D) -> G) -> Option<Option<Waker>> {
        let index = self.head;
        // The head has no predecessor: unlinking it only touches its
        // successor.
        let slot = self.slots.get_mut(index as usize)?;
        let Slot::Queued {
            next, waker, data, ..
        } = core::mem::replace(slot, Slot::Free { next: NIL })
        else {
            unreachable!("only queued slots are linked")
        };
        *slot = Slot::Granted(grant(data));
        self.head = next;
        if next == NIL {
            self.tail = NIL;
        } else if let Slot::Queued { prev, .. } = &mut self.slots[next as usize] {
            *prev = NIL;
        }
        self.len -= 1;
        Some(waker)
    }

    /// Polls a waiter: collects its grant (freeing its slot) if it was
    /// granted; leaves the queue if it is still queued and the task is
    /// under a cancellation request ([`crate::cancel_requested`]: a grant
    /// that came first wins over the cancellation, as a resolved Lwt promise
    /// ignores `cancel`); else records the waker and gives the ticket back.
    #[inline]
    pub(crate) fn poll(&mut self, ticket: Ticket, waker: &Waker) -> Polled<D, G> {
        match &mut self.slots[ticket.0 as usize] {
            Slot::Granted(_) => match self.release(ticket.0) {
                Slot::Granted(g) => Polled::Granted(g),
                _ => unreachable!("checked above"),
            },
            Slot::Queued { .. } if crate::cancel_requested() => match self.cancel(ticket) {
                Left::Queued(data) => Polled::Canceled(data),
                Left::Granted(_) => unreachable!("checked above"),
            },
            Slot::Queued { waker: Some(w), .. } if w.will_wake(waker) => Polled::Waiting(ticket),
            Slot::Queued { waker: w, .. } => {
                *w = Some(crate::task::clone_waker(waker));
                Polled::Waiting(ticket)
            }
            Slot::Free { .. } => unreachable!("a ticket names a live slot"),
        }
    }

    /// Takes a waiter out of the queue, wherever it is, and frees its slot.
    #[inline]
    pub(crate) fn cancel(&mut self, ticket: Ticket) -> Left<D, G> {
        if let Slot::Queued { .. } = self.slots[ticket.0 as usize] {
            let (_, data) = self.unlink(ticket.0);
            self.release(ticket.0);
            return Left::Queued(data);
        }
        match self.release(ticket.0) {
            Slot::Granted(g) => Left::Granted(g),
            _ => unreachable!("a ticket names a live slot"),
        }
    }

    /// Unlinks a queued slot; returns its waker and data, leaving a
    /// placeholder the caller frees.
    #[inline]
    fn unlink(&mut self, index: u32) -> (Option<Waker>, D) {
        let placeholder = Slot::Free { next: NIL };
        let Slot::Queued {
            prev,
            next,
            waker,
            data,
        } = core::mem::replace(&mut self.slots[index as usize], placeholder)
        else {
            unreachable!("only queued slots are linked")
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.set_next(prev, next);
        }
        if next == NIL {
            self.tail = prev;
        } else if let Slot::Queued { prev: p, .. } = &mut self.slots[next as usize] {
            *p = prev;
        }
        self.len -= 1;
        (waker, data)
    }

    /// Frees a slot; returns what it held.
    #[inline]
    fn release(&mut self, index: u32) -> Slot<D, G> {
        let old = core::mem::replace(
            &mut self.slots[index as usize],
            Slot::Free { next: self.free },
        );
        self.free = index;
        old
    }

    #[inline]
    fn set_next(&mut self, index: u32, next: u32) {
        if let Slot::Queued { next: n, .. } = &mut self.slots[index as usize] {
            *n = next;
        }
    }
}
