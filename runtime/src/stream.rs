//! Streams of values (Lwt's `Lwt_stream`): buffered, unbounded or bounded,
//! fed by pushers or pulled from a generator, read by one or more readers.
//!
//! # Sources
//!
//! * [`create`] returns a stream and a [`Pusher`]: pushing never waits and
//!   the buffer is unbounded (seed 003: the consumer must be faster than
//!   the producer on average, or memory grows).
//! * [`create_bounded`] returns a stream and a [`BoundedPusher`] whose
//!   `push` waits while `capacity` values are buffered: back-pressure, the
//!   producer slowed down to the consumer's pace.
//! * [`Stream::from`] pulls from a generator, lazily: the generator is
//!   called only when a reader needs a value that is not buffered.
//! * [`Stream::of_list`] is a closed stream of the given values.
//!
//! The stream ends when every pusher is dropped or [`Pusher::close`] is
//! called, or when the generator returns `Ok(None)`; readers then drain the
//! buffer and see the end: [`Stream::get`] resolves with `None`,
//! [`Stream::next`] with an [`Empty`] failure (recognise it with
//! `error.downcast_ref::<Empty>()`).
//!
//! ```
//! use std::time::Duration;
//! use unikit_runtime::stream::create_bounded;
//! use unikit_runtime::{Simulated, run, sleep, spawn, time};
//!
//! // A producer of six values, a consumer taking 1 s per value and room for
//! // two: the producer is held back until the consumer catches up.
//! let producer_done = run(Simulated::new(0), async {
//!     let (stream, push) = create_bounded(2);
//!     let producer = spawn(async move {
//!         for v in 0..6 {
//!             push.push(v).await?;
//!         }
//!         Ok(time::now())
//!     });
//!     stream
//!         .iter_s(async |_| sleep(Duration::from_secs(1)).await)
//!         .await?;
//!     producer.await
//! });
//! assert_eq!(producer_done.unwrap().since_epoch(), Duration::from_secs(3));
//! ```
//!
//! # Readers
//!
//! A `Stream` value is one reader with its own position. Reading consumes:
//! a value read is gone for this reader. [`Clone`] makes another reader at
//! the same position (Lwt's `clone`): each clone sees every value from the
//! clone point on, in order, independently. Values stay buffered until the
//! slowest reader has read them; the last reader to read a value gets it
//! moved, the others get clones. A value pushed when no reader exists is
//! dropped (nobody could ever read it).
//!
//! # Differences from Lwt
//!
//! * Reading takes `&mut self`: one operation at a time per reader. Seed
//!   003 warns that mixing readers and traversals of one stream hands each
//!   value to only one of them; here [`map`](Stream::map),
//!   [`filter`](Stream::filter), [`iter`](Stream::iter) and
//!   [`fold`](Stream::fold) take the stream by value, so the mix cannot be
//!   written. Clone first to traverse and read (seed 003's advice).
//!   Several tasks sharing one reader share it behind a
//!   [`Mutex`](crate::sync::Mutex), which serves them in FIFO order.
//! * A bounded stream queues any number of blocked pushes in FIFO order
//!   (Lwt allows one and raises `Full` for the next). Closing the stream
//!   rejects the blocked pushes with [`Closed`].
//! * A generator's failure is returned to the reader that pulled, and the
//!   stream goes on (the next read calls the generator again).
//! * Pushing only schedules the waiting readers; they run in the next
//!   round (Lwt runs them inside `push`, seed 003's epilogue).
//! * Cancellation: a read that waits resolves with
//!   [`Error::Canceled`] when its task is canceled, consuming nothing; a
//!   blocked bounded push does too, and its value is not pushed.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;
use core::future::{Future, poll_fn};
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use crate::Error;
use crate::sync::waiters::{Polled, Ticket, WaitQueue};

/// The failure of [`Stream::next`] at the end of the stream (Lwt's
/// `Lwt_stream.Empty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Empty;

impl fmt::Display for Empty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("end of stream")
    }
}

impl core::error::Error for Empty {}

/// Pushing into a closed stream (Lwt's `Lwt_stream.Closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stream closed")
    }
}

impl core::error::Error for Closed {}

/// Something that produces the values of a pulled stream.
trait Pull<T> {
    /// The next value, `None` at the end.
    fn poll_pull(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T>, Error>>;
}

type Generated<T> = Pin<Box<dyn Future<Output = Result<Option<T>, Error>>>>;

/// [`Stream::from`]'s source: a generator and its call in progress.
struct FromFn<T> {
    generate: Box<dyn FnMut() -> Generated<T>>,
    pending: Option<Generated<T>>,
}

impl<T> Pull<T> for FromFn<T> {
    fn poll_pull(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T>, Error>> {
        let pending = self.pending.get_or_insert_with(&mut self.generate);
        let result = pending.as_mut().poll(cx);
        if result.is_ready() {
            self.pending = None;
        }
        result
    }
}

/// [`Stream::map`]'s source.
struct Map<T, F> {
    inner: Stream<T>,
    f: F,
}

impl<T, U, F: FnMut(T) -> U> Pull<U> for Map<T, F> {
    fn poll_pull(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<U>, Error>> {
        self.inner
            .poll_get(cx)
            .map(|r| r.map(|v| v.map(&mut self.f)))
    }
}

/// [`Stream::filter`]'s source.
struct Filter<T, F> {
    inner: Stream<T>,
    keep: F,
}

impl<T, F: FnMut(&T) -> bool> Pull<T> for Filter<T, F> {
    fn poll_pull(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T>, Error>> {
        loop {
            match self.inner.poll_get(cx) {
                Poll::Ready(Ok(Some(v))) if !(self.keep)(&v) => continue,
                other => return other,
            }
        }
    }
}

struct Reader {
    /// The sequence number of the next value this reader reads.
    pos: u64,
    /// The task waiting for a value past the buffer.
    waker: Option<Waker>,
}

struct Shared<T> {
    buffer: VecDeque<T>,
    /// The sequence number of `buffer[0]`: the slowest reader's position.
    base: u64,
    closed: bool,
    readers: Vec<Option<Reader>>,
    free_readers: Vec<u32>,
    live_readers: usize,
    /// Clones values for all readers but the last; set by `Stream::clone`.
    cloner: Option<fn(&T) -> T>,
    /// The pulled source; `None` for pushed streams, and while a reader
    /// polls it.
    pull: Option<Box<dyn Pull<T>>>,
    /// The reader that polled the pulled source last and waits for it.
    driver: Option<u32>,
    /// Bounded streams: the capacity and the blocked pushes (granted
    /// `true` when pushed, `false` when the stream closed).
    capacity: Option<usize>,
    pushers: WaitQueue<T, bool>,
    pusher_handles: usize,
    /// Wakers collected under the borrow, woken after it (kept to reuse
    /// the allocation).
    scratch: Vec<Waker>,
}

impl<T> Shared<T> {
    fn new(buffer: VecDeque<T>, closed: bool, capacity: Option<usize>) -> Self {
        Shared {
            buffer,
            base: 0,
            closed,
            readers: Vec::new(),
            free_readers: Vec::new(),
            live_readers: 0,
            cloner: None,
            pull: None,
            driver: None,
            capacity,
            pushers: WaitQueue::default(),
            pusher_handles: 0,
            scratch: Vec::new(),
        }
    }

    fn reader(&mut self, id: u32) -> &mut Reader {
        self.readers[id as usize]
            .as_mut()
            .expect("a live reader's slot")
    }

    fn add_reader(&mut self, pos: u64) -> u32 {
        let reader = Some(Reader { pos, waker: None });
        self.live_readers += 1;
        match self.free_readers.pop() {
            Some(id) => {
                self.readers[id as usize] = reader;
                id
            }
            None => {
                self.readers.push(reader);
                u32::try_from(self.readers.len() - 1).expect("fewer than 2^32 readers")
            }
        }
    }

    fn end(&self) -> u64 {
        self.base + self.buffer.len() as u64
    }

    /// Whether the bounded buffer has room for one more value.
    fn has_room(&self) -> bool {
        self.capacity.is_none_or(|c| self.buffer.len() < c)
    }

    /// Schedules every reader waiting for a value.
    fn wake_readers(&mut self) {
        for reader in self.readers.iter_mut().flatten() {
            if let Some(waker) = reader.waker.take() {
                self.scratch.push(waker);
            }
        }
    }

    /// Appends a value for the readers (dropped if there is none).
    fn append(&mut self, value: T) -> Option<T> {
        if self.live_readers == 0 {
            return Some(value);
        }
        self.buffer.push_back(value);
        self.wake_readers();
        None
    }

    /// Moves blocked pushes into the buffer while there is room, and wakes
    /// the readers if any moved.
    fn refill(&mut self) {
        let before = self.buffer.len();
        while self.has_room() {
            let buffer = &mut self.buffer;
            match self.pushers.grant_front(|v| {
                buffer.push_back(v);
                true
            }) {
                Some(waker) => self.scratch.extend(waker),
                None => break,
            }
        }
        if self.buffer.len() > before {
            self.wake_readers();
        }
    }

    /// Takes out the values every reader has read (into `dropped`, to be
    /// dropped unborrowed), then refills; with no reader left, blocked
    /// pushes complete and their values are dropped too.
    fn trim(&mut self, dropped: &mut Vec<T>) {
        let min = self.readers.iter().flatten().map(|r| r.pos).min();
        let read = min.map_or(self.buffer.len(), |min| (min - self.base) as usize);
        dropped.extend(self.buffer.drain(..read));
        self.base += read as u64;
        if self.live_readers == 0 {
            while let Some(waker) = self.pushers.grant_front(|v| {
                dropped.push(v);
                true
            }) {
                self.scratch.extend(waker);
            }
        } else {
            self.refill();
        }
    }

    /// Reads the value at `id`'s position, which must be buffered.
    fn consume(&mut self, id: u32) -> T {
        let pos = self.reader(id).pos;
        self.reader(id).pos = pos + 1;
        let shared = self.readers.iter().flatten().any(|r| r.pos <= pos);
        let index = (pos - self.base) as usize;
        if shared {
            let clone = self
                .cloner
                .expect("readers share values only after a clone");
            clone(&self.buffer[index])
        } else {
            debug_assert_eq!(index, 0, "the slowest reader reads the front");
            let value = self.buffer.pop_front().expect("a buffered value");
            self.base += 1;
            self.refill();
            value
        }
    }

    /// Ends the stream: readers see the end after the buffer, blocked
    /// pushes are rejected (their values returned to be dropped unborrowed).
    fn close(&mut self, dropped: &mut Vec<T>) {
        self.closed = true;
        while let Some(waker) = self.pushers.grant_front(|v| {
            dropped.push(v);
            false
        }) {
            self.scratch.extend(waker);
        }
        self.wake_readers();
    }
}

/// Wakes what `shared.scratch` collected, outside the borrow.
fn wake_collected<T>(shared: &RefCell<Shared<T>>) {
    let mut wakers = core::mem::take(&mut shared.borrow_mut().scratch);
    for waker in wakers.drain(..) {
        waker.wake();
    }
    let mut shared = shared.borrow_mut();
    if shared.scratch.capacity() < wakers.capacity() {
        shared.scratch = wakers;
    }
}

/// A reader of a stream of `T`.
pub struct Stream<T> {
    shared: Rc<RefCell<Shared<T>>>,
    id: u32,
}

/// An unbounded stream and its pusher (Lwt's `create`).
pub fn create<T>() -> (Stream<T>, Pusher<T>) {
    let shared = Rc::new(RefCell::new(Shared::new(VecDeque::new(), false, None)));
    shared.borrow_mut().pusher_handles = 1;
    (Stream::reader_of(shared.clone(), 0), Pusher { shared })
}

/// A stream buffering at most `capacity` values, and its pusher, whose
/// `push` waits for room (Lwt's `create_bounded`).
///
/// # Panics
/// If `capacity` is zero.
pub fn create_bounded<T>(capacity: usize) -> (Stream<T>, BoundedPusher<T>) {
    assert!(capacity > 0, "a bounded stream holds at least one value");
    let shared = Rc::new(RefCell::new(Shared::new(
        VecDeque::new(),
        false,
        Some(capacity),
    )));
    shared.borrow_mut().pusher_handles = 1;
    (
        Stream::reader_of(shared.clone(), 0),
        BoundedPusher { shared },
    )
}

impl<T> Stream<T> {
    fn reader_of(shared: Rc<RefCell<Shared<T>>>, pos: u64) -> Self {
        let id = shared.borrow_mut().add_reader(pos);
        Stream { shared, id }
    }

    fn pulled(pull: Box<dyn Pull<T>>) -> Self {
        let mut shared = Shared::new(VecDeque::new(), false, None);
        shared.pull = Some(pull);
        Stream::reader_of(Rc::new(RefCell::new(shared)), 0)
    }

    /// A stream of the values `generate` produces, called only when a
    /// reader needs a value that is not buffered; `Ok(None)` ends the
    /// stream (Lwt's `from`).
    pub fn from<F, Fut>(mut generate: F) -> Self
    where
        F: FnMut() -> Fut + 'static,
        Fut: Future<Output = Result<Option<T>, Error>> + 'static,
        T: 'static,
    {
        Stream::pulled(Box::new(FromFn {
            generate: Box::new(move || Box::pin(generate())),
            pending: None,
        }))
    }

    /// A closed stream of `values` (Lwt's `of_list`).
    pub fn of_list(values: impl IntoIterator<Item = T>) -> Self {
        let shared = Shared::new(values.into_iter().collect(), true, None);
        Stream::reader_of(Rc::new(RefCell::new(shared)), 0)
    }

    /// Polls until a value is buffered at this reader's position (`true`)
    /// or the stream has ended there (`false`), pulling from the source if
    /// it is a generator.
    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<bool, Error>> {
        loop {
            let mut shared = self.shared.borrow_mut();
            if shared.reader(self.id).pos < shared.end() {
                return Poll::Ready(Ok(true));
            }
            if shared.closed {
                return Poll::Ready(Ok(false));
            }
            if crate::cancel_requested() {
                shared.reader(self.id).waker = None;
                return Poll::Ready(Err(Error::Canceled));
            }
            let reader = shared.reader(self.id);
            if !reader
                .waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                reader.waker = Some(cx.waker().clone());
            }
            let Some(mut pull) = shared.pull.take() else {
                return Poll::Pending;
            };
            shared.driver = Some(self.id);
            drop(shared);
            let pulled = pull.poll_pull(cx);
            let mut shared = self.shared.borrow_mut();
            shared.pull = Some(pull);
            if pulled.is_pending() {
                return Poll::Pending;
            }
            shared.driver = None;
            let dropped = match pulled {
                Poll::Ready(Ok(Some(value))) => shared.append(value),
                Poll::Ready(Ok(None)) => {
                    shared.closed = true;
                    shared.wake_readers();
                    None
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => unreachable!("checked above"),
            };
            drop(shared);
            drop(dropped);
            wake_collected(&self.shared);
        }
    }

    /// Polls for the next value: `None` at the end.
    fn poll_get(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T>, Error>> {
        match self.poll_ready(cx) {
            Poll::Ready(Ok(true)) => {
                let value = self.shared.borrow_mut().consume(self.id);
                wake_collected(&self.shared);
                Poll::Ready(Ok(Some(value)))
            }
            Poll::Ready(Ok(false)) => Poll::Ready(Ok(None)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Waits until a value is available (`true`) or the stream ended.
    async fn ready(&self) -> Result<bool, Error> {
        let waiting = Waiting { stream: self };
        poll_fn(|cx| waiting.stream.poll_ready(cx)).await
    }

    /// The next value, or `None` at the end of the stream (Lwt's `get`).
    pub async fn get(&mut self) -> Result<Option<T>, Error> {
        if !self.ready().await? {
            return Ok(None);
        }
        let value = self.shared.borrow_mut().consume(self.id);
        wake_collected(&self.shared);
        Ok(Some(value))
    }

    /// The next value; at the end of the stream, fails with [`Empty`]
    /// (Lwt's `next`).
    pub async fn next(&mut self) -> Result<T, Error> {
        self.get().await?.ok_or_else(|| Error::from(Empty))
    }

    /// The next value without consuming it, or `None` at the end (Lwt's
    /// `peek`).
    pub async fn peek(&mut self) -> Result<Option<T>, Error>
    where
        T: Clone,
    {
        if !self.ready().await? {
            return Ok(None);
        }
        let shared = self.shared.borrow();
        let index = (shared.readers[self.id as usize]
            .as_ref()
            .expect("a live reader")
            .pos
            - shared.base) as usize;
        Ok(Some(shared.buffer[index].clone()))
    }

    /// Discards the next value, waiting for it if needed (Lwt's `junk`).
    pub async fn junk(&mut self) -> Result<(), Error> {
        self.get().await.map(drop)
    }

    /// Whether the stream has ended at this reader's position, waiting
    /// until that is known (Lwt's `is_empty`).
    pub async fn is_empty(&mut self) -> Result<bool, Error> {
        Ok(!self.ready().await?)
    }

    /// Whether the stream is closed (values may still be buffered).
    pub fn is_closed(&self) -> bool {
        self.shared.borrow().closed
    }

    /// A stream of `f` applied to each value (Lwt's `map`); lazy: `f` runs
    /// as the new stream is read.
    pub fn map<U, F>(self, f: F) -> Stream<U>
    where
        F: FnMut(T) -> U + 'static,
        T: 'static,
    {
        Stream::pulled(Box::new(Map { inner: self, f }))
    }

    /// A stream of the values for which `keep` is true (Lwt's `filter`).
    pub fn filter<F>(self, keep: F) -> Stream<T>
    where
        F: FnMut(&T) -> bool + 'static,
        T: 'static,
    {
        Stream::pulled(Box::new(Filter { inner: self, keep }))
    }

    /// Calls `f` on every value until the end (Lwt's `iter`).
    pub async fn iter(mut self, mut f: impl FnMut(T)) -> Result<(), Error> {
        while let Some(v) = self.get().await? {
            f(v);
        }
        Ok(())
    }

    /// Awaits `f` on every value in turn until the end (Lwt's `iter_s`).
    pub async fn iter_s(
        mut self,
        mut f: impl AsyncFnMut(T) -> Result<(), Error>,
    ) -> Result<(), Error> {
        while let Some(v) = self.get().await? {
            f(v).await?;
        }
        Ok(())
    }

    /// Folds every value into `init` until the end (Lwt's `fold`, with the
    /// accumulator first as in Rust's `Iterator::fold`).
    pub async fn fold<A>(mut self, init: A, mut f: impl FnMut(A, T) -> A) -> Result<A, Error> {
        let mut acc = init;
        while let Some(v) = self.get().await? {
            acc = f(acc, v);
        }
        Ok(acc)
    }

    /// Every value until the end (Lwt's `to_list`).
    pub async fn to_vec(self) -> Result<Vec<T>, Error> {
        self.fold(Vec::new(), |mut all, v| {
            all.push(v);
            all
        })
        .await
    }
}

/// A reader's wait in progress: on drop (a canceled or abandoned read),
/// forgets the reader's waker and, if it was driving the generator, hands
/// the driving to another waiting reader.
struct Waiting<'a, T> {
    stream: &'a Stream<T>,
}

impl<T> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        let mut shared = self.stream.shared.borrow_mut();
        shared.reader(self.stream.id).waker = None;
        if shared.driver == Some(self.stream.id) {
            shared.driver = None;
            shared.wake_readers();
            drop(shared);
            wake_collected(&self.stream.shared);
        }
    }
}

impl<T: Clone> Clone for Stream<T> {
    /// Another reader at this reader's position (Lwt's `clone`): it sees
    /// every value from here on, independently of this one.
    fn clone(&self) -> Self {
        let pos = {
            let mut shared = self.shared.borrow_mut();
            shared.cloner = Some(T::clone);
            shared.reader(self.id).pos
        };
        Stream::reader_of(self.shared.clone(), pos)
    }
}

impl<T> Drop for Stream<T> {
    fn drop(&mut self) {
        let mut dropped = Vec::new();
        {
            let mut shared = self.shared.borrow_mut();
            shared.readers[self.id as usize] = None;
            shared.free_readers.push(self.id);
            shared.live_readers -= 1;
            if shared.driver == Some(self.id) {
                shared.driver = None;
                shared.wake_readers();
            }
            shared.trim(&mut dropped);
        }
        drop(dropped);
        wake_collected(&self.shared);
    }
}

impl<T> fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.shared.borrow();
        f.debug_struct("Stream")
            .field("buffered", &shared.buffer.len())
            .field("closed", &shared.closed)
            .field("readers", &shared.live_readers)
            .finish()
    }
}

/// Pushes values into an unbounded stream (Lwt's `push` function).
/// Cloning gives another pusher; the stream closes when the last one is
/// dropped or [`close`](Pusher::close) is called.
pub struct Pusher<T> {
    shared: Rc<RefCell<Shared<T>>>,
}

impl<T> Pusher<T> {
    /// Appends `value` (Lwt's `push (Some v)`); never waits. Fails with
    /// [`Closed`] on a closed stream.
    pub fn push(&self, value: T) -> Result<(), Closed> {
        let dropped = {
            let mut shared = self.shared.borrow_mut();
            if shared.closed {
                return Err(Closed);
            }
            shared.append(value)
        };
        drop(dropped);
        wake_collected(&self.shared);
        Ok(())
    }

    /// Ends the stream (Lwt's `push None`).
    pub fn close(&self) {
        close(&self.shared);
    }
}

fn close<T>(shared: &RefCell<Shared<T>>) {
    let mut dropped = Vec::new();
    shared.borrow_mut().close(&mut dropped);
    drop(dropped);
    wake_collected(shared);
}

impl<T> Clone for Pusher<T> {
    fn clone(&self) -> Self {
        self.shared.borrow_mut().pusher_handles += 1;
        Pusher {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Pusher<T> {
    fn drop(&mut self) {
        release_pusher(&self.shared);
    }
}

fn release_pusher<T>(shared: &RefCell<Shared<T>>) {
    let last = {
        let mut shared = shared.borrow_mut();
        shared.pusher_handles -= 1;
        shared.pusher_handles == 0 && !shared.closed
    };
    if last {
        close(shared);
    }
}

/// Pushes values into a bounded stream, waiting for room (Lwt's
/// `bounded_push`). Cloning gives another pusher; the stream closes when
/// the last one is dropped or [`close`](BoundedPusher::close) is called.
pub struct BoundedPusher<T> {
    shared: Rc<RefCell<Shared<T>>>,
}

impl<T> BoundedPusher<T> {
    /// Appends `value` at once if the buffer has room and no push waits,
    /// else when the readers have made room for it and for the pushes
    /// queued before (Lwt's `push`). Acts when called.
    ///
    /// Fails with [`Closed`] if the stream is closed, now or while the push
    /// waits; resolves with [`Error::Canceled`] if the task is canceled
    /// while it waits (the value is then not pushed). Dropping the future of
    /// a waiting push withdraws it.
    pub fn push(&self, value: T) -> Push<'_, T> {
        let (stage, dropped) = {
            let mut shared = self.shared.borrow_mut();
            if shared.closed {
                (PushStage::Failed, Some(value))
            } else if shared.live_readers == 0 {
                (PushStage::Done, Some(value))
            } else if shared.has_room() && shared.pushers.len() == 0 {
                (PushStage::Done, shared.append(value))
            } else {
                (PushStage::Queued(shared.pushers.push(value, None)), None)
            }
        };
        drop(dropped);
        wake_collected(&self.shared);
        Push {
            shared: &self.shared,
            stage,
        }
    }

    /// Ends the stream; waiting pushes fail with [`Closed`].
    pub fn close(&self) {
        close(&self.shared);
    }

    /// How many pushes wait for room.
    pub fn blocked(&self) -> usize {
        self.shared.borrow().pushers.len()
    }
}

impl<T> Clone for BoundedPusher<T> {
    fn clone(&self) -> Self {
        self.shared.borrow_mut().pusher_handles += 1;
        BoundedPusher {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for BoundedPusher<T> {
    fn drop(&mut self) {
        release_pusher(&self.shared);
    }
}

enum PushStage {
    Done,
    Failed,
    Queued(Ticket),
    Finished,
}

/// The future of [`BoundedPusher::push`].
#[must_use = "a waiting push is withdrawn when this future is dropped"]
pub struct Push<'a, T> {
    shared: &'a RefCell<Shared<T>>,
    stage: PushStage,
}

impl<T> Future for Push<'_, T> {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match core::mem::replace(&mut self.stage, PushStage::Finished) {
            PushStage::Done => Poll::Ready(Ok(())),
            PushStage::Failed => Poll::Ready(Err(Error::from(Closed))),
            PushStage::Queued(ticket) => {
                let polled = self.shared.borrow_mut().pushers.poll(ticket, cx.waker());
                match polled {
                    Polled::Granted(true) => Poll::Ready(Ok(())),
                    Polled::Granted(false) => Poll::Ready(Err(Error::from(Closed))),
                    Polled::Canceled(withdrawn) => {
                        drop(withdrawn);
                        Poll::Ready(Err(Error::Canceled))
                    }
                    Polled::Waiting(ticket) => {
                        self.stage = PushStage::Queued(ticket);
                        Poll::Pending
                    }
                }
            }
            PushStage::Finished => panic!("`Push` polled after completion"),
        }
    }
}

impl<T> Drop for Push<'_, T> {
    fn drop(&mut self) {
        if let PushStage::Queued(ticket) = core::mem::replace(&mut self.stage, PushStage::Finished)
        {
            let left = self.shared.borrow_mut().pushers.cancel(ticket);
            drop(left);
        }
    }
}
