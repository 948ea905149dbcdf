//! Scheduling: pause, promise-local storage, never running tasks inside a
//! resolver, constant stack.

mod common;

use common::{Log, sim};
use unikit_runtime::{Promise, get, join, new_key, pause, sleep, spawn, wait, with_value};

#[test]
fn pause_lets_every_runnable_task_run_first() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let l2 = l.clone();
        let other = spawn(async move {
            l2.push("other 1");
            pause().await?;
            l2.push("other 2");
            Ok(())
        });
        l.push("main 1");
        pause().await?;
        l.push("main 2");
        other.await
    })
    .unwrap();
    assert_eq!(log.lines(), ["other 1", "main 1", "other 2", "main 2"]);
}

#[test]
fn a_pause_made_while_paused_tasks_are_woken_waits_for_the_next_round() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let tasks: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|name| {
                let l = l.clone();
                spawn(async move {
                    pause().await?;
                    l.push(format!("{name} round 1"));
                    pause().await?;
                    l.push(format!("{name} round 2"));
                    Ok(())
                })
            })
            .collect();
        join(tasks).await
    })
    .unwrap();
    assert_eq!(
        log.lines(),
        ["a round 1", "b round 1", "a round 2", "b round 2"]
    );
}

#[test]
fn local_storage_gives_each_task_its_binding() {
    // The manual's example: Lwt.join [with_value id_key (Some "thread 1")
    // (fun () -> log "foo"); with_value id_key (Some "thread 2") ...].
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let id_key = new_key::<&'static str>();
        let say = move |l: Log, msg: &'static str| async move {
            pause().await?;
            l.push(format!("{}: {msg}", get(id_key).unwrap_or("main")));
            Ok(())
        };
        join([
            spawn(with_value(id_key, Some("thread 1"), say(l.clone(), "foo"))),
            spawn(with_value(id_key, Some("thread 2"), say(l.clone(), "bar"))),
            spawn(say(l.clone(), "baz")),
        ])
        .await
    })
    .unwrap();
    assert_eq!(log.lines(), ["thread 1: foo", "thread 2: bar", "main: baz"]);
}

#[test]
fn local_binding_follows_the_task_across_awaits_and_is_restored_after() {
    let r = sim(async {
        let key = new_key::<u32>();
        let inside = with_value(key, Some(1), async move {
            let before = get(key);
            sleep(common::secs(1)).await?;
            let nested = with_value(key, None, async move {
                Ok::<_, unikit_runtime::Error>(get(key))
            })
            .await?;
            Ok::<_, unikit_runtime::Error>((before, get(key), nested))
        })
        .await?;
        Ok((inside, get(key)))
    });
    assert_eq!(r, Ok(((Some(1), Some(1), None), None)));
}

#[test]
fn spawned_tasks_inherit_local_bindings() {
    let r = sim(async {
        let key = new_key::<String>();
        with_value(key, Some("request 7".to_string()), async move {
            spawn(async move {
                pause().await?;
                Ok(get(key))
            })
            .await
        })
        .await
    });
    assert_eq!(r, Ok(Some("request 7".to_string())));
}

#[test]
fn keys_are_distinct() {
    let r = sim(async {
        let a = new_key::<u8>();
        let b = new_key::<u8>();
        with_value(a, Some(1), async move { Ok(get(b)) }).await
    });
    assert_eq!(r, Ok(None));
}

#[test]
fn resolving_never_runs_the_waiter_inside_the_resolver() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let mut resolvers = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..3 {
            let (p, r) = wait::<u32>();
            resolvers.push(r);
            let l = l.clone();
            tasks.push(spawn(async move {
                let v = p.await?;
                l.push(format!("woken {i} with {v}"));
                Ok(())
            }));
        }
        for (i, r) in resolvers.into_iter().enumerate() {
            r.fulfil(i as u32 * 10);
            l.push(format!("resolved {i}"));
        }
        join(tasks).await
    })
    .unwrap();
    assert_eq!(
        log.lines(),
        [
            "resolved 0",
            "resolved 1",
            "resolved 2",
            "woken 0 with 0",
            "woken 1 with 10",
            "woken 2 with 20"
        ]
    );
}

#[test]
fn ten_million_awaits_on_resolved_promises_run_in_constant_stack() {
    // Lwt's bind on resolved promises grows the stack (seed 001); here the
    // loop runs on a 64 KiB stack.
    let handle = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(|| {
            sim(async {
                let mut sum = 0u64;
                for i in 0..10_000_000u64 {
                    sum += Promise::fulfilled(i & 1).await?;
                }
                Ok(sum)
            })
            .ok()
        })
        .unwrap();
    assert_eq!(handle.join().unwrap(), Some(5_000_000));
}
