//! Printing to standard output as a Unix tool does.

use std::io::Write;

/// Writes one line to standard output. When the reader has gone — `anxin
/// events tail | head` — the process ends quietly and successfully, as `ls |
/// head` does, where `println!` would panic.
pub fn line(args: std::fmt::Arguments<'_>) {
    if let Err(error) = try_line(args) {
        end_on(&error);
    }
}

/// Writes one line to standard output, saying whether it could.
pub fn try_line(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_fmt(args).and_then(|()| stdout.write_all(b"\n")).and_then(|()| stdout.flush())
}

/// Ends the process after a failed write to standard output: quietly and
/// successfully when the reader has gone, with the error otherwise.
pub fn end_on(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {error}");
    std::process::exit(1);
}

/// `println!` that ends the process quietly on a closed pipe ([`line`]).
macro_rules! out {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
pub(crate) use out;
