//! Errors and cleanup: catch, finalize, async_, dont_wait.

mod common;

use common::{Log, secs, sim};
use std::cell::RefCell;
use std::rc::Rc;
use unikit_runtime::{
    Builder, Error, Runtime, Simulated, async_, catch, dont_wait, finalize, pause,
    set_async_exception_hook, sleep, spawn, task_name,
};

#[test]
fn catch_handles_a_rejection() {
    let r = sim(async {
        catch(
            async { Err::<i32, _>(Error::msg("Error_you_want_to_catch")) },
            |e| async move {
                assert_eq!(e, Error::msg("Error_you_want_to_catch"));
                Ok(0)
            },
        )
        .await
    });
    assert_eq!(r, Ok(0));
}

#[test]
fn catch_passes_a_fulfilled_value_through() {
    let r = sim(async { catch(async { Ok(1) }, |_| async { Ok(0) }).await });
    assert_eq!(r, Ok(1));
}

#[test]
fn catch_can_pass_other_errors_on() {
    let r: Result<i32, Error> = sim(async {
        catch(async { Err(Error::msg("other")) }, |e| async move {
            if e == Error::msg("mine") {
                Ok(0)
            } else {
                Err(e)
            }
        })
        .await
    });
    assert_eq!(r, Err(Error::msg("other")));
}

fn finalized(log: &Log, result: Result<i32, Error>) -> Result<i32, Error> {
    let l = log.clone();
    sim(async move {
        finalize(async move { result }, move || async move {
            l.push("freed");
            Ok(())
        })
        .await
    })
}

#[test]
fn finalize_cleans_up_on_success() {
    let log = Log::default();
    assert_eq!(finalized(&log, Ok(1)), Ok(1));
    assert_eq!(log.lines(), ["freed"]);
}

#[test]
fn finalize_cleans_up_on_rejection() {
    let log = Log::default();
    assert_eq!(
        finalized(&log, Err(Error::msg("bad"))),
        Err(Error::msg("bad"))
    );
    assert_eq!(log.lines(), ["freed"]);
}

#[test]
fn finalize_cleans_up_on_cancellation_even_if_the_cleanup_waits() {
    let log = Log::default();
    let l = log.clone();
    let r = sim(async move {
        let l2 = l.clone();
        let t = spawn(finalize(sleep(secs(10)), move || async move {
            sleep(secs(1)).await?;
            l2.at("freed");
            Ok(())
        }));
        t.cancel();
        t.await
    });
    assert_eq!(r, Err(Error::Canceled));
    assert_eq!(log.lines(), ["1.000 freed"]);
}

#[test]
fn a_failing_cleanup_replaces_the_result() {
    let r = sim(async { finalize(async { Ok(1) }, || async { Err(Error::msg("cleanup")) }).await });
    assert_eq!(r, Err(Error::msg("cleanup")));
}

type Reports = Rc<RefCell<Vec<(String, Option<&'static str>)>>>;

fn hook_into(reports: &Reports) -> impl Fn(&Error, Option<&'static str>) + 'static {
    let reports = reports.clone();
    move |e, name| reports.borrow_mut().push((e.to_string(), name))
}

#[test]
fn async_failures_go_to_the_configured_handler_with_the_task_name() {
    let reports = Reports::default();
    Runtime::new(Simulated::new(0))
        .async_exception_hook(hook_into(&reports))
        .run(async {
            Builder::new().name("worker").async_(async {
                pause().await?;
                Err(Error::msg("oops"))
            });
            async_(async { Err(Error::msg("anonymous")) });
            pause().await?;
            pause().await
        })
        .unwrap();
    assert_eq!(
        *reports.borrow(),
        [
            ("anonymous".to_string(), None),
            ("oops".to_string(), Some("worker"))
        ]
    );
}

#[test]
fn async_exception_hook_can_be_replaced_while_running() {
    let reports = Reports::default();
    let r = reports.clone();
    sim(async move {
        set_async_exception_hook(hook_into(&r));
        async_(async { Err(Error::msg("late")) });
        Ok(())
    })
    .unwrap();
    assert_eq!(*reports.borrow(), [("late".to_string(), None)]);
}

#[test]
fn async_successes_are_not_reported() {
    let reports = Reports::default();
    Runtime::new(Simulated::new(0))
        .async_exception_hook(hook_into(&reports))
        .run(async {
            async_(async { Ok(()) });
            Ok(())
        })
        .unwrap();
    assert!(reports.borrow().is_empty());
}

#[test]
fn default_async_handler_logs_the_failure_with_the_task_name() {
    struct Capture;
    static LINES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            LINES
                .lock()
                .unwrap()
                .push(format!("{} {}", record.level(), record.args()));
        }
        fn flush(&self) {}
    }
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    sim(async {
        Builder::new()
            .name("echo")
            .async_(async { Err(Error::msg("connection reset")) });
        Ok(())
    })
    .unwrap();
    assert_eq!(
        *LINES.lock().unwrap(),
        ["ERROR task echo failed: connection reset"]
    );
}

#[test]
fn dont_wait_sends_failures_to_its_own_handler() {
    let log = Log::default();
    let l = log.clone();
    sim(async move {
        let l2 = l.clone();
        dont_wait(async { Err(Error::msg("lost")) }, move |e| {
            l2.push(format!("handled {e}"))
        });
        Ok(())
    })
    .unwrap();
    assert_eq!(log.lines(), ["handled lost"]);
}

#[test]
fn tasks_know_their_name() {
    let r = sim(async {
        let named = Builder::new()
            .name("reader")
            .spawn(async { Ok(task_name()) });
        let unnamed = spawn(async { Ok(task_name()) });
        Ok((named.await?, unnamed.await?))
    });
    assert_eq!(r, Ok((Some("reader"), None)));
}
