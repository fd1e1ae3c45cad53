//! The pseudo-terminal of an interactive command (`kubectl exec -t`): opened in systemk,
//! the slave becomes the command's stdin, stdout, stderr and controlling terminal (the
//! child makes a new session and takes it, in `spawn`), owned by the container's user as
//! runc makes it; the master stays with systemk, which reads and writes it and sets its
//! size (`TIOCSWINSZ`). Layer 3; raw ioctls nix does not wrap, so `unsafe` is allowed here.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// Both ends of a new pseudo-terminal, close-on-exec (the child gets the slave through
/// its standard streams only).
pub(super) struct Pty {
    pub(super) master: OwnedFd,
    pub(super) slave: OwnedFd,
}

/// Opens a pseudo-terminal whose slave belongs to `uid`:`gid`.
pub(super) fn open(uid: u32, gid: u32) -> io::Result<Pty> {
    let pty = nix::pty::openpty(None, None)?;
    for fd in [&pty.master, &pty.slave] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )?;
    }
    nix::unistd::fchown(&pty.slave, Some(uid.into()), Some(gid.into()))?;
    Ok(Pty {
        master: pty.master,
        slave: pty.slave,
    })
}

/// Sets the terminal's size, which the command sees as `SIGWINCH` and `stty size`.
pub(super) fn set_size(master: &OwnedFd, columns: u16, rows: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a live struct.
    let done = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    if done != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_set_on_the_master_is_the_slaves() {
        let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
        let pty = open(uid.as_raw(), gid.as_raw()).expect("a pseudo-terminal");
        set_size(&pty.master, 100, 33).expect("TIOCSWINSZ");
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize into a live struct.
        let read = unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
        assert_eq!(read, 0);
        assert_eq!((size.ws_col, size.ws_row), (100, 33));
        let flags = nix::fcntl::fcntl(&pty.master, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert!(
            nix::fcntl::FdFlag::from_bits_retain(flags).contains(nix::fcntl::FdFlag::FD_CLOEXEC)
        );
    }
}
