//! `mailbox`: seed 003's answer ("Lwt_condition vs Lwt_mvar vs Lwt_stream")
//! as a program, one act per structure, with the timings that show how each
//! behaves between a producer and a consumer.
//!
//! 1. **Bounded stream** (writer-driven, buffered, with back-pressure): the
//!    producer pushes six packets as fast as it can into a stream holding
//!    two; the consumer takes one every 500 ms. Three pushes complete at
//!    once (one packet in the consumer's hands, two buffered), then each
//!    waits for the consumer to make room: the log shows the
//!    producer slowed to the consumer's pace instead of an unbounded buffer
//!    growing (the trap of Lwt's unbounded streams).
//! 2. **MVar** (reader-driven, one slot): each `put` after the first waits
//!    until the consumer, taking every 300 ms, has emptied the slot.
//! 3. **Condition** (an announcement, not a mailbox): a signal sent while
//!    nobody waits is lost (not sticky); one sent to a waiting task arrives;
//!    a broadcast reaches every waiter.
//!
//! Deliberate difference from Lwt, which the seed's epilogue warns about:
//! resolving a promise here never runs the woken task inside the resolver,
//! so a `push` or `put` returns before the consumer runs.

use alloc::rc::Rc;
use unikit_runtime::devices::Time;
use unikit_runtime::stream::create_bounded;
use unikit_runtime::sync::{Condition, MVar};
use unikit_runtime::{Error, join, spawn};

/// Packets the stream's producer sends.
pub const PACKETS: u32 = 6;
/// The bounded stream's capacity.
pub const STREAM_CAPACITY: usize = 2;

async fn bounded_stream(time: impl Time) -> Result<(), Error> {
    log::info!(
        "stream: capacity {STREAM_CAPACITY}, {PACKETS} packets, consumer takes one per 500 ms"
    );
    let (mut stream, pusher) = create_bounded::<u32>(STREAM_CAPACITY);
    let producer = spawn(async move {
        for packet in 1..=PACKETS {
            pusher.push(packet).await?;
            log::info!("stream: pushed packet {packet}");
        }
        pusher.close();
        Ok(())
    });
    let consumer = spawn(async move {
        while let Some(packet) = stream.get().await? {
            time.sleep_ns(500_000_000).await?;
            log::info!("stream: consumed packet {packet}");
        }
        Ok(())
    });
    join([producer, consumer]).await
}

async fn mvar(time: impl Time) -> Result<(), Error> {
    log::info!("mvar: one slot, consumer takes every 300 ms");
    let slot = Rc::new(MVar::new_empty());
    let producer_slot = slot.clone();
    let producer = spawn(async move {
        for value in 1..=3u32 {
            producer_slot.put(value).await?;
            log::info!("mvar: put {value}");
        }
        Ok(())
    });
    let consumer = spawn(async move {
        for _ in 0..3 {
            time.sleep_ns(300_000_000).await?;
            let value = slot.take().await?;
            log::info!("mvar: took {value}");
        }
        Ok(())
    });
    join([producer, consumer]).await
}

async fn condition(time: impl Time) -> Result<(), Error> {
    let condition = Rc::new(Condition::<&'static str>::new());
    let heard = condition.signal("nobody is listening");
    log::info!("condition: signal with no waiter delivered: {heard}");
    let listeners: alloc::vec::Vec<_> = (1..=2)
        .map(|listener| {
            let condition = condition.clone();
            spawn(async move {
                let message = condition.wait().await?;
                log::info!("condition: listener {listener} heard {message:?}");
                Ok(())
            })
        })
        .collect();
    time.sleep_ns(200_000_000).await?;
    let woken = condition.broadcast("packet arrived");
    log::info!("condition: broadcast woke {woken} listeners");
    join(listeners).await
}

/// The unikernel.
pub async fn start(time: impl Time) -> Result<(), Error> {
    bounded_stream(time.clone()).await?;
    mvar(time.clone()).await?;
    condition(time).await?;
    log::info!("done");
    Ok(())
}
