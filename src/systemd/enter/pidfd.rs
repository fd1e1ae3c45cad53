//! A pidfd on a unit's main process: held while its `/proc` files are read, so a pid
//! recycled in between is noticed, and used to enter its namespaces. Layer 3; raw
//! syscalls nix does not wrap, so `unsafe` is allowed here.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Opens a pidfd for `pid`.
pub(super) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Whether the process behind `pidfd` has not exited (signal 0 checks without sending).
pub(super) fn pidfd_alive(pidfd: &OwnedFd) -> bool {
    // SAFETY: signal 0 with no siginfo only checks that the process exists.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    sent == 0
}

/// Whether the process behind `pidfd` is still running: its pidfd becomes readable when it
/// exits, before it is reaped (a zombie still takes signals, so [`pidfd_alive`] does not
/// tell).
pub(super) fn pidfd_running(pidfd: &OwnedFd) -> bool {
    use std::os::fd::AsFd;

    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0))
}
