//! `echo_console`: the echo server on real input, lines typed on the
//! console (on bare metal, the serial port's receive interrupt), each
//! logged back, until `quit`, ten lines, or the end of input.

use unikit_runtime::Error;
use unikit_runtime::devices::Console;

/// Lines echoed before the unikernel stops by itself.
pub const MAX_LINES: usize = 10;

/// The unikernel.
pub async fn start(console: impl Console) -> Result<(), Error> {
    log::info!("type up to {MAX_LINES} lines; `quit` ends");
    for _ in 0..MAX_LINES {
        let Some(line) = console.read_line().await? else {
            log::info!("end of input");
            return Ok(());
        };
        log::info!("echo: {line}");
        if line == "quit" {
            break;
        }
    }
    log::info!("bye");
    Ok(())
}
