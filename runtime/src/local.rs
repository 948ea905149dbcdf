//! Promise-local storage (Lwt's `new_key`, `with_value`, `get`).
//!
//! A [`Key`] names a variable; [`with_value`] binds it while a future runs;
//! [`get`] reads the binding visible to the running code. Bindings follow a
//! task across its awaits: `with_value` re-establishes its binding each
//! time its future is polled, and a spawned task inherits the bindings
//! visible where it was spawned (as an Lwt promise created inside
//! `with_value` does).
//!
//! The bindings are an immutable linked list shared by reference count:
//! binding a key prepends one node, so spawning and polling only copy a
//! pointer.

use alloc::rc::Rc;
use core::any::Any;
use core::future::{Future, IntoFuture};
use core::marker::PhantomData;
use core::pin::Pin;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::task::{Context, Poll};

use crate::executor::{self, Core};

/// The bindings visible to running code (innermost first).
pub(crate) type Locals = Option<Rc<Binding>>;

pub(crate) struct Binding {
    key: usize,
    value: Option<Rc<dyn Any>>,
    next: Locals,
}

/// The name of a promise-local variable holding a `T`.
pub struct Key<T> {
    id: usize,
    _value: PhantomData<fn() -> T>,
}

impl<T> Clone for Key<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Key<T> {}

impl<T> core::fmt::Debug for Key<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Key").field(&self.id).finish()
    }
}

/// A new key, distinct from every other.
pub fn new_key<T: 'static>() -> Key<T> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    Key {
        id: NEXT.fetch_add(1, Ordering::Relaxed),
        _value: PhantomData,
    }
}

/// The value bound to `key` for the running code, if any.
pub fn get<T: Clone + 'static>(key: Key<T>) -> Option<T> {
    let locals = executor::try_with_core(Core::locals).flatten();
    let mut node = locals.as_deref();
    while let Some(binding) = node {
        if binding.key == key.id {
            return binding
                .value
                .as_deref()
                .and_then(|v| v.downcast_ref::<T>())
                .cloned();
        }
        node = binding.next.as_deref();
    }
    None
}

/// Runs `future` with `key` bound to `value` (`None` unbinds it); the
/// previous binding is visible again outside.
pub fn with_value<T: 'static, F: IntoFuture>(
    key: Key<T>,
    value: Option<T>,
    future: F,
) -> WithValue<F::IntoFuture> {
    WithValue {
        key: key.id,
        value: value.map(|v| Rc::new(v) as Rc<dyn Any>),
        bound: None,
        future: future.into_future(),
    }
}

/// The future of [`with_value`].
#[must_use = "futures do nothing unless awaited"]
pub struct WithValue<F> {
    key: usize,
    value: Option<Rc<dyn Any>>,
    /// The bindings last installed, reused while the outer ones are the
    /// same.
    bound: Locals,
    future: F,
}

impl<F: Future> Future for WithValue<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of
        // this pinned struct; the other fields are never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        executor::with_core(|core| {
            let outer = core.locals();
            let reuse = matches!(&this.bound, Some(b) if ptr_eq(&b.next, &outer));
            if !reuse {
                this.bound = Some(Rc::new(Binding {
                    key: this.key,
                    value: this.value.clone(),
                    next: outer,
                }));
            }
            // SAFETY: see above.
            let future = unsafe { Pin::new_unchecked(&mut this.future) };
            core.with_locals(this.bound.clone(), || future.poll(cx))
        })
    }
}

fn ptr_eq(a: &Locals, b: &Locals) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Rc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}
