//! The log lines of this test process, kept in memory: one subscriber for the whole
//! binary (the first test that asks installs it), at the level the `crm` binary logs by
//! default, so that a test can search everything the system wrote (the erasure test's
//! canary) and the executor's request timing stays on (the metrics test).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Every log line written since the subscriber was installed.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut all) = self.0.lock() {
            all.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|all| String::from_utf8_lossy(&all).into_owned())
            .unwrap_or_default()
    }
}

static LOGS: OnceLock<Captured> = OnceLock::new();

/// The process's log lines (installing the subscriber on the first call).
pub fn capture() -> Captured {
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,sqlx=warn,sea_orm=warn")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        logs
    })
    .clone()
}
