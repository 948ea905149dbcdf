//! Traversals with an asynchronous function (Lwt's `Lwt_list`).
//!
//! Lwt's naming convention (the manual, 2.4): `_s` functions are
//! *sequential*: each call is awaited before the next one is made; `_p`
//! functions are *parallel*: every call is made first, then all are
//! awaited together, and results come back in the order of the items.
//!
//! | function | Lwt | result |
//! |---|---|---|
//! | [`iter_s`], [`iter_p`] | `iter_s`, `iter_p` | `()` |
//! | [`map_s`], [`map_p`] | `map_s`, `map_p` | the results, in order |
//! | [`filter_s`], [`filter_p`] | `filter_s`, `filter_p` | the kept items, in order |
//! | [`fold_left_s`] | `fold_left_s` | the accumulator |
//! | [`for_all_s`], [`exists_s`] | `for_all_s`, `exists_s` | stops at the first `false` / `true` |
//!
//! A sequential traversal stops at the first rejection. A parallel one
//! waits for every call and then fails with the first rejection in time
//! (as [`crate::all`] does, which runs the calls inside the awaiting task:
//! no task is spawned per item).
//!
//! # Differences from Lwt
//!
//! * The items come first and the function second, as in Rust's iterator
//!   methods; any `IntoIterator` is accepted.
//! * The function is an async closure (`async |x| ...`, or a closure
//!   returning a future); `filter_*` lend it each item by reference.
//! * Like every Rust future, a traversal starts when it is first polled,
//!   not when it is called; a parallel one then makes all its calls
//!   before awaiting any.

use alloc::vec::Vec;

use crate::Error;
use crate::compose::all;

/// Awaits `f` on each item in turn.
pub async fn iter_s<T>(
    items: impl IntoIterator<Item = T>,
    mut f: impl AsyncFnMut(T) -> Result<(), Error>,
) -> Result<(), Error> {
    for item in items {
        f(item).await?;
    }
    Ok(())
}

/// Calls `f` on every item, then awaits all the calls.
pub async fn iter_p<T>(
    items: impl IntoIterator<Item = T>,
    f: impl AsyncFn(T) -> Result<(), Error>,
) -> Result<(), Error> {
    all(items.into_iter().map(|item| f(item))).await.map(drop)
}

/// The results of `f` on each item, awaited in turn.
pub async fn map_s<T, R>(
    items: impl IntoIterator<Item = T>,
    mut f: impl AsyncFnMut(T) -> Result<R, Error>,
) -> Result<Vec<R>, Error> {
    let mut results = Vec::new();
    for item in items {
        results.push(f(item).await?);
    }
    Ok(results)
}

/// The results of `f` on every item, all calls made first; in order.
pub async fn map_p<T, R>(
    items: impl IntoIterator<Item = T>,
    f: impl AsyncFn(T) -> Result<R, Error>,
) -> Result<Vec<R>, Error> {
    all(items.into_iter().map(|item| f(item))).await
}

/// The items for which `keep` resolves to `true`, tested in turn.
pub async fn filter_s<T>(
    items: impl IntoIterator<Item = T>,
    mut keep: impl AsyncFnMut(&T) -> Result<bool, Error>,
) -> Result<Vec<T>, Error> {
    let mut kept = Vec::new();
    for item in items {
        if keep(&item).await? {
            kept.push(item);
        }
    }
    Ok(kept)
}

/// The items for which `keep` resolves to `true`, all tested at once; in
/// order.
pub async fn filter_p<T>(
    items: impl IntoIterator<Item = T>,
    keep: impl AsyncFn(&T) -> Result<bool, Error>,
) -> Result<Vec<T>, Error> {
    let items: Vec<T> = items.into_iter().collect();
    let verdicts = all(items.iter().map(|item| keep(item))).await?;
    Ok(items
        .into_iter()
        .zip(verdicts)
        .filter_map(|(item, keep)| keep.then_some(item))
        .collect())
}

/// Folds the items into `init` with `f`, awaiting each step (Lwt's
/// `fold_left_s`).
pub async fn fold_left_s<T, A>(
    items: impl IntoIterator<Item = T>,
    init: A,
    mut f: impl AsyncFnMut(A, T) -> Result<A, Error>,
) -> Result<A, Error> {
    let mut acc = init;
    for item in items {
        acc = f(acc, item).await?;
    }
    Ok(acc)
}

/// Whether `f` resolves to `true` for every item; tests them in turn and
/// stops at the first `false`.
pub async fn for_all_s<T>(
    items: impl IntoIterator<Item = T>,
    mut f: impl AsyncFnMut(T) -> Result<bool, Error>,
) -> Result<bool, Error> {
    for item in items {
        if !f(item).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether `f` resolves to `true` for some item; tests them in turn and
/// stops at the first `true`.
pub async fn exists_s<T>(
    items: impl IntoIterator<Item = T>,
    mut f: impl AsyncFnMut(T) -> Result<bool, Error>,
) -> Result<bool, Error> {
    for item in items {
        if f(item).await? {
            return Ok(true);
        }
    }
    Ok(false)
}
