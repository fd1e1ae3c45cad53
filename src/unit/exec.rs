//! `ExecStart=` composition from a container's `command`/`args` and the vendor unit's
//! `ExecStart=` (KNOWLEDGE §1):
//!
//! | pod gives        | vendor unit                         | no vendor unit                      |
//! |------------------|-------------------------------------|-------------------------------------|
//! | command only     | command replaces the binary, vendor options kept | command                  |
//! | args only        | vendor binary kept, args replace the options | args, if `args[0]` is absolute |
//! | command + args   | command + args                      | command + args                      |
//! | neither          | vendor `ExecStart=` unchanged       | error: nothing to run               |
//!
//! Pod words are always quoted by `escape::exec_arg`. Vendor words are kept *raw*, as
//! the package wrote them, so their specifiers (`%t`), variables (`$SSHD_OPTS` from an
//! `EnvironmentFile=`) and escapes keep their meaning; they are only split into words
//! with systemd's rules (whitespace outside quotes, `\` escapes) to find the binary.
//!
//! Vendor prefixes on the binary: `-` (a failing exit counts as success) and `:` (no
//! `$` expansion; pod words are then written with a literal `$`) are kept, because they
//! only change how the vendor's own command line is read. `+`, `!` and `!!` are refused:
//! they run the command without the `User=`/`Group=` (and for `+` without the
//! sandboxing) systemk applies, so a pod's `runAsUser` would silently not hold. `@`
//! (separate argv0) is refused because replacing the binary or the options would
//! silently shift which word is argv0. Several effective vendor `ExecStart=` lines
//! (`Type=oneshot`) are refused: a container is one process.
//!
//! A pod's `command[0]` is either an absolute path or a bare name (`sh`), which systemd
//! 252 resolves in its fixed search path (`/usr/local/sbin:/usr/local/bin:/usr/sbin:
//! /usr/bin:/sbin:/bin`), as Kubernetes' `command: [sh, -c, …]` expects. Relative paths
//! with a `/` are refused (systemd has no working directory to resolve them against at
//! parse time), and so is a first character systemd would read as a prefix, and a
//! first word `;`: quoting does not stop either, since systemd reads the command
//! separator and prefixes of a first word after unquoting (`exec/vendor_lines.rs`).
//! Later pod words are quoted arguments, which systemd never reads as separators.
//! The composed line is split again as systemd would and must be exactly one command.
//!
//! Layer 2: pure, no I/O.

use super::error::{Error, Result};
use super::escape::{Dollar, exec_arg_with};
use super::file::UnitFile;

mod vendor_lines;

pub use vendor_lines::check_vendor_exec_lines;
use vendor_lines::{Command, split_commands, vendor_commands};

/// The prefix characters systemd 252 accepts before an `ExecStart=` binary.
const PREFIX_CHARS: &[char] = &['-', '@', ':', '+', '!'];

/// The `ExecStart=` value for a container. `vendor` is the vendor unit, if any.
pub fn compose_exec_start(
    container: &str,
    command: &[String],
    args: &[String],
    vendor: Option<&UnitFile>,
) -> Result<String> {
    let line = compose(container, command, args, vendor)?;
    // By construction one command with only the vendor's kept prefix; checked again on
    // the final text, so no change to the rules above can let a pod word start a command.
    match split_commands(&line).as_deref() {
        Some([one]) if !one.prefix.contains(['+', '!', '@']) => Ok(line),
        _ => Err(Error::InvalidCommand {
            container: container.to_owned(),
            field: "command",
            binary: line,
            why: "the composed ExecStart= would not be read as exactly one command",
        }),
    }
}

fn compose(
    container: &str,
    command: &[String],
    args: &[String],
    vendor: Option<&UnitFile>,
) -> Result<String> {
    if !command.is_empty() && !args.is_empty() {
        check_binary(container, "command", &command[0])?;
        return quote_all(container, command.iter().chain(args), Dollar::Double);
    }
    let vendor_line = match vendor {
        Some(unit) => vendor_exec_start(unit)?,
        None => None,
    };
    match (vendor_line, command.is_empty(), args.is_empty()) {
        (None, false, _) => {
            check_binary(container, "command", &command[0])?;
            quote_all(container, command.iter(), Dollar::Double)
        }
        (None, true, false) => {
            if !args[0].starts_with('/') {
                return Err(Error::NoCommand {
                    container: container.to_owned(),
                    why: "args given without a command, and args[0] is not an absolute path \
                          to run (there is no vendor ExecStart= to take the binary from)",
                });
            }
            check_binary(container, "args", &args[0])?;
            quote_all(container, args.iter(), Dollar::Double)
        }
        (None, true, true) => Err(Error::NoCommand {
            container: container.to_owned(),
            why: "the image has no service unit to take ExecStart= from, so the container \
                  needs a command (or args starting with an absolute path)",
        }),
        (Some(line), true, true) => Ok(line.raw.to_owned()),
        (Some(line), false, _) => {
            check_binary(container, "command", &command[0])?;
            let pod = quote_all(container, command.iter(), line.dollar)?;
            Ok(join([line.prefix.as_str(), &pod].concat(), &line.options))
        }
        (Some(line), true, false) => {
            let pod = quote_all(container, args.iter(), line.dollar)?;
            Ok(join(line.binary.to_owned(), &[pod]))
        }
    }
}

/// A vendor `ExecStart=` line split into its raw words.
struct VendorLine<'a> {
    raw: &'a str,
    /// The prefixes kept (`-`, `:`), to put before a replacing binary.
    prefix: String,
    /// The raw first word, prefixes included.
    binary: &'a str,
    /// The raw option words.
    options: Vec<String>,
    dollar: Dollar,
}

fn vendor_exec_start(unit: &UnitFile) -> Result<Option<VendorLine<'_>>> {
    let lines = unit.get_list("Service", "ExecStart");
    let raw = match lines.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => {
            return Err(vendor_error(
                &lines.join("\nExecStart="),
                "the vendor unit has several ExecStart= lines (Type=oneshot); a container runs \
                 exactly one command",
            ));
        }
    };
    let mut commands = vendor_commands("ExecStart", raw)?;
    if commands.len() > 1 {
        return Err(vendor_error(
            raw,
            "';'-separated commands are not supported; a container runs exactly one command",
        ));
    }
    let Some(Command { prefix, words }) = commands.pop() else {
        return Ok(None);
    };
    let Some((binary, options)) = words.split_first() else {
        return Ok(None);
    };
    let dollar = if prefix.contains(':') {
        Dollar::Literal
    } else {
        Dollar::Double
    };
    Ok(Some(VendorLine {
        raw,
        prefix,
        binary,
        options: options.iter().map(|w| (*w).to_owned()).collect(),
        dollar,
    }))
}

fn check_binary(container: &str, field: &'static str, binary: &str) -> Result<()> {
    let why = if binary.is_empty() {
        Some("it is empty")
    } else if binary == ";" {
        Some(
            "systemd reads a first word ';' as a command separator, even quoted, so the \
              next word could carry a '+' prefix and run as root without the sandbox",
        )
    } else if binary.starts_with(PREFIX_CHARS) {
        Some("systemd would read its first character as an ExecStart= prefix")
    } else if !binary.starts_with('/') && binary.contains('/') {
        Some("it must be an absolute path or a bare name looked up in systemd's PATH")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::InvalidCommand {
            container: container.to_owned(),
            field,
            binary: binary.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

fn quote_all<'a>(
    container: &str,
    words: impl Iterator<Item = &'a String>,
    dollar: Dollar,
) -> Result<String> {
    let quoted = words
        .enumerate()
        .map(|(i, w)| exec_arg_with(&format!("word {i} of container {container}"), w, dollar))
        .collect::<Result<Vec<_>>>()?;
    Ok(quoted.join(" "))
}

fn join(first: String, rest: &[String]) -> String {
    std::iter::once(first)
        .chain(rest.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn vendor_error(line: &str, why: &'static str) -> Error {
    Error::InvalidVendorUnit {
        line: format!("ExecStart={line}"),
        why,
    }
}

#[cfg(test)]
mod tests;
