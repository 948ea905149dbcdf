//! `cargo run -- <unikernel> [options]`: boots a unikernel under QEMU with
//! its serial console on stdout, and exits with the unikernel's status. See
//! the `cli` module for the options and the README for the status table.

use std::process::ExitCode;
use unikit::cli::{self, Command, USAGE};
use unikit::network::{self, Network};
use unikit::qemu::{self, Outcome};
use unikit::{host, images};

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("unikit: {error}\n{USAGE}");
            return ExitCode::from(qemu::STATUS_USAGE);
        }
    };
    let mut options = match command {
        Command::Help => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Command::List => {
            println!("{}", images::listing());
            return ExitCode::SUCCESS;
        }
        Command::Run(options) => options,
    };
    let Some(image) = images::find(&options.unikernel) else {
        eprintln!(
            "unikit: no unikernel called `{}`\n{}",
            options.unikernel,
            images::listing()
        );
        return ExitCode::from(qemu::STATUS_USAGE);
    };
    let tools = match host::ensure_tools(options.uefi) {
        Ok(tools) => tools,
        Err(instruction) => {
            eprintln!("unikit: {instruction}");
            return ExitCode::from(qemu::STATUS_NO_QEMU);
        }
    };
    if options.gdb {
        eprintln!(
            "unikit: QEMU waits for gdb; attach with: gdb {} -ex 'target remote localhost:1234'",
            image.kernel
        );
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        // QEMU puts the terminal in raw mode and does not echo what is
        // typed; the kernel's console echoes it instead (user arguments
        // come later and win).
        options.runtime_args.insert(0, "console-echo=on".to_owned());
    }
    qemu::catch_stop_signals();
    let _created_tap = match &options.network {
        Network::Tap { name } => match network::prepare_tap(name) {
            Ok(created) => created,
            Err(instruction) => {
                eprintln!("unikit: {instruction}");
                return ExitCode::from(qemu::STATUS_USAGE);
            }
        },
        _ => None,
    };
    if let Some(description) = options.network.describe() {
        eprintln!("unikit: {description}");
    }
    let args_file = if options.runtime_args.is_empty() {
        None
    } else {
        match qemu::ArgsFile::write(&options.runtime_args) {
            Ok(file) => Some(file),
            Err(error) => {
                eprintln!("unikit: cannot write the runtime arguments: {error}");
                return ExitCode::from(qemu::STATUS_NO_GUEST_STATUS);
            }
        }
    };
    let outcome = qemu::command(&tools, image, &options, args_file.as_ref())
        .spawn()
        .and_then(|child| qemu::wait(child, options.timeout));
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("unikit: could not run {}: {error}", tools.qemu.display());
            return ExitCode::from(qemu::STATUS_NO_QEMU);
        }
    };
    match &outcome {
        Outcome::Exited(_) => {}
        Outcome::TimedOut => eprintln!(
            "unikit: {} did not exit within {:?}; QEMU killed (status {})",
            image.name,
            options.timeout.unwrap_or_default(),
            qemu::STATUS_TIMEOUT
        ),
        Outcome::Interrupted(signal) => eprintln!(
            "unikit: stopped by signal {signal}; QEMU stopped (status {})",
            outcome.runner_status()
        ),
        Outcome::NoGuestStatus(code) => eprintln!(
            "unikit: QEMU stopped without a status from {} (QEMU {}); the guest reset or powered off, or QEMU failed (status {})",
            image.name,
            code.map_or("killed by a signal".to_owned(), |code| format!(
                "exit code {code}"
            )),
            qemu::STATUS_NO_GUEST_STATUS
        ),
    }
    ExitCode::from(outcome.runner_status())
}
