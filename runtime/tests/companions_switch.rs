//! Switches (Lwt_switch), on simulated time.

mod common;

use std::rc::Rc;

use common::{Log, secs, sim};
use unikit_runtime::switch::{Off, Switch};
use unikit_runtime::{Error, State, sleep, spawn};

#[test]
fn switch_is_on_until_turned_off() {
    sim(async {
        let sw = Switch::new();
        assert!(sw.is_on());
        assert_eq!(sw.check(), Ok(()));
        sw.turn_off().await?;
        assert!(!sw.is_on());
        let off = sw.check().unwrap_err();
        assert_eq!(off.downcast_ref::<Off>(), Some(&Off));
        Ok(())
    })
    .unwrap();
}

#[test]
fn switch_turn_off_runs_every_hook_and_waits_for_all() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let sw = Switch::new();
        for (name, delay) in [("short", 1), ("long", 3)] {
            let l = l.clone();
            sw.add_hook(move || async move {
                sleep(secs(delay)).await?;
                l.at(format!("{name} hook done"));
                Ok(())
            });
        }
        sw.turn_off().await?;
        l.at("turned off");
        Ok(())
    })
    .unwrap();
    assert_eq!(
        log.lines(),
        [
            "1.000 short hook done",
            "3.000 long hook done",
            "3.000 turned off"
        ]
    );
}

#[test]
fn switch_hooks_start_most_recent_first() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let sw = Switch::new();
        for name in ["opened first", "opened second"] {
            let l = l.clone();
            sw.add_hook(move || {
                l.push(format!("close {name}"));
                async { Ok(()) }
            });
        }
        sw.turn_off().await
    })
    .unwrap();
    assert_eq!(log.lines(), ["close opened second", "close opened first"]);
}

#[test]
fn switch_is_off_as_soon_as_turn_off_is_called() {
    sim(async {
        let sw = Rc::new(Switch::new());
        sw.add_hook(|| async { sleep(secs(1)).await });
        let sw2 = sw.clone();
        let turning = spawn(async move { sw2.turn_off().await });
        assert!(!sw.is_on());
        assert_eq!(turning.state(), State::Pending);
        turning.await
    })
    .unwrap();
}

#[test]
fn switch_turn_off_fails_with_the_first_hook_failure_after_all_ran() {
    let log = Log::default();
    let l = log.clone();
    let r = sim(async move {
        let sw = Switch::new();
        sw.add_hook(move || async move {
            sleep(secs(2)).await?;
            l.at("slow hook done");
            Ok(())
        });
        sw.add_hook(|| async { Err(Error::msg("hook failed")) });
        sw.turn_off().await
    });
    assert_eq!(r, Err(Error::msg("hook failed")));
    assert_eq!(log.lines(), ["2.000 slow hook done"]);
}

#[test]
fn switch_turned_off_twice_runs_the_hooks_once() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let sw = Switch::new();
        sw.add_hook(move || {
            l.push("hook");
            async { Ok(()) }
        });
        sw.turn_off().await?;
        sw.turn_off().await
    })
    .unwrap();
    assert_eq!(log.lines(), ["hook"]);
}

#[test]
fn switch_hook_added_when_off_runs_at_once() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let sw = Switch::new();
        sw.turn_off().await?;
        let l2 = l.clone();
        sw.add_hook(move || async move {
            l2.at("late hook");
            Ok(())
        });
        l.at("added");
        Ok(())
    })
    .unwrap();
    assert_eq!(log.lines(), ["0.000 late hook", "0.000 added"]);
}

#[test]
fn switch_with_switch_turns_it_off_after_the_function_even_on_failure() {
    let log = Log::default();
    let l = log.clone();
    let r: Result<(), Error> = sim(async move {
        Switch::with_switch(async |sw: &Switch| {
            let l = l.clone();
            sw.add_hook(move || async move {
                l.push("released");
                Ok(())
            });
            Err(Error::msg("body failed"))
        })
        .await
    });
    assert_eq!(r, Err(Error::msg("body failed")));
    assert_eq!(log.lines(), ["released"]);
}
