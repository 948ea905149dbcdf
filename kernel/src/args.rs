//! Runtime arguments: the `key=value` pairs given to the runner after `--`
//! (`cargo run -- hello_key -- hello=Bonjour`), which reach the unikernel
//! without rebuilding its image.
//!
//! The runner writes them, NUL-separated, to a file it hands QEMU as the
//! fw_cfg item [`FW_CFG_FILE`]; at boot the kernel reads that item once.
//! The kernel itself understands `log=<level>` and `alarm=<source>`; every
//! other key is the unikernel's.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use spin::Once;
use unikit_drivers::fw_cfg;

/// The fw_cfg file the runner passes the arguments in.
pub const FW_CFG_FILE: &str = "opt/unikit/args";

static ARGS: Once<Vec<(String, String)>> = Once::new();

/// An argument that is not `key=value`.
#[derive(Debug, PartialEq, Eq)]
pub struct MalformedArgument(pub String);

impl fmt::Display for MalformedArgument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "runtime argument `{}` is not of the form key=value",
            self.0
        )
    }
}

/// Splits NUL-separated `key=value` arguments.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, MalformedArgument> {
    text.split('\0')
        .filter(|argument| !argument.is_empty())
        .map(|argument| match argument.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            _ => Err(MalformedArgument(argument.to_string())),
        })
        .collect()
}

/// Reads the arguments from fw_cfg (none when the item is absent).
pub fn init() -> Result<(), MalformedArgument> {
    let text = fw_cfg::find(FW_CFG_FILE).map_or_else(String::new, |file| {
        let mut bytes = vec![0u8; file.size as usize];
        fw_cfg::read(file, &mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let args = parse(&text)?;
    ARGS.call_once(|| args);
    Ok(())
}

/// The value of `key`, if given (the last one wins).
pub fn get(key: &str) -> Option<&'static str> {
    ARGS.get()?
        .iter()
        .rev()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_separated_pairs_keep_spaces_and_equals_in_values() {
        let args = parse("hello=Hello World!\0expr=a=b\0\0").unwrap();
        assert_eq!(
            args,
            [
                ("hello".to_string(), "Hello World!".to_string()),
                ("expr".to_string(), "a=b".to_string())
            ]
        );
    }

    #[test]
    fn an_argument_without_a_key_is_malformed() {
        assert_eq!(parse("=x"), Err(MalformedArgument("=x".into())));
        assert_eq!(
            parse("verbose").unwrap_err().to_string(),
            "runtime argument `verbose` is not of the form key=value"
        );
        assert_eq!(parse(""), Ok(Vec::new()));
    }
}
