//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use unikit_runtime::{Error, Simulated, run, time};

/// Runs `main` on simulated time with seed 0.
pub fn sim<T: 'static>(main: impl Future<Output = Result<T, Error>> + 'static) -> Result<T, Error> {
    run(Simulated::new(0), main)
}

/// A shared, ordered record of what happened.
#[derive(Clone, Default)]
pub struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    pub fn push(&self, line: impl Into<String>) {
        self.0.borrow_mut().push(line.into());
    }

    /// Records `line` with the simulated time, as `"<seconds>.<millis> line"`.
    pub fn at(&self, line: impl AsRef<str>) {
        let t = time::now().since_epoch();
        self.push(format!(
            "{}.{:03} {}",
            t.as_secs(),
            t.subsec_millis(),
            line.as_ref()
        ));
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
