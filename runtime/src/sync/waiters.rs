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

/// A waiter's place in the slab. The links and the waker are fields of
/// their own, written one by one: a whole-enum slot was moved out and back
/// with `mem::replace`, copied through the stack with wide loads of fields
/// just written with narrow stores.
struct Slot<D, G> {
    /// Queued: the waiter before it (`NIL` at the head).
    prev: u32,
    /// Queued: the waiter after it (`NIL` at the tail); free: the next free
    /// slot.
    next: u32,
    /// Queued: the waker to wake with the grant, `None` until the
    /// operation's future is first polled (the companions' operations are
    /// eager: they queue when called). Free or granted: `None`.
    waker: Option<Waker>,
    held: Held<D, G>,
}

enum Held<D, G> {
    Free,
    Queued(D),
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
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return self.push_new(data, waker.cloned());
        };
        debug_assert!(matches!(slot.held, Held::Free) && slot.waker.is_none());
        self.free = slot.next;
        slot.prev = tail;
        slot.next = NIL;
        if let Some(waker) = waker {
            slot.waker = Some(crate::task::clone_waker(waker));
        }
        slot.held = Held::Queued(data);
        self.link_tail(index);
        Ticket(index)
    }

    /// Queues a waiter in a new slot, with no free slot left.
    #[inline(never)]
    fn push_new(&mut self, data: D, waker: Option<Waker>) -> Ticket {
        let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 waiters");
        self.slots.push(Slot {
            prev: self.tail,
            next: NIL,
            waker,
            held: Held::Queued(data),
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
        let index = self.head;
        let slot = self.slots.get_mut(index as usize)?;
        let Held::Queued(data) = core::mem::replace(&mut slot.held, Held::Free) else {
            unreachable!("only queued slots are linked")
        };
        slot.held = Held::Granted(grant(data));
        let waker = slot.waker.take();
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
        Some(waker)
    }

    /// Polls a waiter: collects its grant (freeing its slot) if it was
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
    /// it: the future's stage is not moved out and back, and the slot is
    /// looked up once for the grant, the cancellation check and the waker.
    /// Once it returns `Granted` or `Canceled` the slot is free and the
    /// ticket is spent: the caller drops it at once.
    #[inline(always)]
    pub(crate) fn poll_in_place(&mut self, ticket: &Ticket, waker: &Waker) -> Polled<D, G, ()> {
        let index = ticket.0;
        let slot = &mut self.slots[index as usize];
        match slot.held {
            Held::Granted(_) => {
                slot.next = self.free;
                self.free = index;
                let Held::Granted(grant) = core::mem::replace(&mut slot.held, Held::Free) else {
                    unreachable!("checked above")
                };
                Polled::Granted(grant)
            }
            Held::Queued(_) if crate::cancel_requested() => Polled::Canceled(self.leave(index)),
            Held::Queued(_) => {
                match &mut slot.waker {
                    Some(w) if w.will_wake(waker) => {}
                    w => *w = Some(crate::task::clone_waker(waker)),
                }
                Polled::Waiting(())
            }
            Held::Free => unreachable!("a ticket names a live slot"),
        }
    }

    /// A queued waiter leaving on a cancellation request: frees its slot
    /// and returns its data.
    #[inline(never)]
    fn leave(&mut self, index: u32) -> D {
        self.unlink(index);
        match self.release(index) {
            Held::Queued(data) => data,
            _ => unreachable!("checked by the caller"),
        }
    }

    /// Takes a waiter out of the queue, wherever it is, and frees its slot.
    #[inline]
    pub(crate) fn cancel(&mut self, ticket: Ticket) -> Left<D, G> {
        if let Held::Queued(_) = self.slots[ticket.0 as usize].held {
            self.unlink(ticket.0);
        }
        match self.release(ticket.0) {
            Held::Queued(data) => Left::Queued(data),
            Held::Granted(g) => Left::Granted(g),
            Held::Free => unreachable!("a ticket names a live slot"),
        }
    }

    /// Unlinks a queued slot and drops its waker; the caller frees it.
    #[inline]
    fn unlink(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        let (prev, next) = (slot.prev, slot.next);
        drop(slot.waker.take());
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

    /// Frees a slot (unlinked, its waker taken); returns what it held.
    #[inline]
    fn release(&mut self, index: u32) -> Held<D, G> {
        let slot = &mut self.slots[index as usize];
        slot.next = self.free;
        self.free = index;
        core::mem::replace(&mut slot.held, Held::Free)
    }
}
