//! `systemk-prober` on its own (issue 12 point 1): the resident prober that runs a unit's
//! exec probes, driven here over its socket exactly as systemk drives it, outside any
//! unit. It reports how each command ended with the last bytes of its output, kills a
//! command's whole group at its timeout, refuses a malformed request without running
//! anything, ends as soon as the main process it serves ends or systemk goes, and takes
//! its running command with it when it is killed.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockType, recv, send, setsockopt, socketpair, sockopt,
};
use nix::sys::time::TimeVal;
use systemk::systemd::enter::protocol::{End, MAX_REPLY, Reply, Request};

/// A prober started by the test: its socket, its process and the process it serves.
struct Prober {
    socket: OwnedFd,
    process: Child,
    main: Child,
}

impl Prober {
    fn start() -> Self {
        let main = Command::new("/bin/sleep").arg("1000").spawn().unwrap();
        let main_process = pidfd_open(main.id());
        let (socket, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let timeout = TimeVal::new(20, 0);
        setsockopt(&socket, sockopt::ReceiveTimeout, &timeout).unwrap();
        let pidfd = main_process.as_raw_fd();
        let mut command = Command::new(env!("CARGO_BIN_EXE_systemk-prober"));
        command
            .env_clear()
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null());
        // SAFETY: dup2 or fcntl only, between fork and exec: the pidfd on fd 3, open
        // across exec, as systemk puts it.
        unsafe {
            command.pre_exec(move || {
                let placed = if pidfd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0) == 0
                } else {
                    libc::dup2(pidfd, 3) == 3
                };
                if placed {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            })
        };
        let process = command.spawn().unwrap();
        drop(command);
        Self {
            socket,
            process,
            main,
        }
    }

    fn ask(&self, packet: &[u8]) -> Reply {
        send(self.socket.as_raw_fd(), packet, MsgFlags::empty()).unwrap();
        let mut buffer = vec![0u8; MAX_REPLY];
        let received = recv(self.socket.as_raw_fd(), &mut buffer, MsgFlags::empty()).unwrap();
        Reply::decode(&buffer[..received]).expect("a well-formed reply")
    }

    fn run(&self, id: u32, argv: &[&str], timeout: Duration) -> Reply {
        let request = Request {
            id,
            timeout_ms: u32::try_from(timeout.as_millis()).unwrap(),
            max_output: 4096,
            candidates: vec![argv[0].as_bytes().to_vec()],
            argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
            envp: vec![
                b"PATH=/usr/bin:/bin".to_vec(),
                b"GREETING=hi there".to_vec(),
            ],
        };
        let reply = self.ask(&request.encode().unwrap());
        assert_eq!(reply.id, id);
        reply
    }

    /// Waits for the prober to exit.
    fn ends(&mut self, why: &str) {
        wait_until(why, || self.process.try_wait().unwrap().map(drop));
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = self.main.kill();
        let _ = self.main.wait();
    }
}

fn pidfd_open(pid: u32) -> OwnedFd {
    // SAFETY: pidfd_open returns a new fd or -1, which the assert refuses.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0);
        assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
        std::os::fd::FromRawFd::from_raw_fd(fd as libc::c_int)
    }
}

fn text(reply: &Reply) -> &str {
    std::str::from_utf8(&reply.output).unwrap()
}

#[test]
fn a_prober_runs_commands_and_reports_how_they_ended() {
    let prober = Prober::start();
    let second = Duration::from_secs(5);

    let ended = prober.run(
        1,
        &["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
        second,
    );
    assert_eq!((ended.end, text(&ended)), (End::Exited(3), "out\nerr\n"));
    let signaled = prober.run(2, &["/bin/sh", "-c", "kill -TERM $$"], second);
    assert_eq!(signaled.end, End::Signaled(libc::SIGTERM));
    // Only the request's environment, in its order, and argv as given.
    let env = prober.run(3, &["/usr/bin/env"], second);
    assert_eq!(text(&env), "PATH=/usr/bin:/bin\nGREETING=hi there\n");
    let argv = prober.run(4, &["/bin/echo", "", "a  b"], second);
    assert_eq!(text(&argv), " a  b\n");
    // No fd of the prober's (its socket to systemk, the pidfd of the main process) and
    // none of its signal settings (the Rust runtime ignores SIGPIPE) reach a command.
    // `ls` itself holds fd 3, the directory it lists.
    let fds = prober.run(11, &["/bin/ls", "/proc/self/fd"], second);
    assert_eq!(text(&fds), "0\n1\n2\n3\n");
    let stdin = prober.run(13, &["/bin/readlink", "/proc/self/fd/0"], second);
    assert_eq!(text(&stdin), "/dev/null\n");
    let signals = prober.run(
        12,
        &["/bin/grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"],
        second,
    );
    assert_eq!(
        text(&signals),
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );

    let missing = prober.run(5, &["/nonexistent/probe"], second);
    assert_eq!(missing.end, End::NotFound);
    let not_executable = prober.run(6, &["/etc/passwd"], second);
    assert_eq!(not_executable.end, End::ExecFailed(libc::EACCES));

    // At the timeout the command's whole group goes; what it wrote is kept.
    let start = Instant::now();
    let slow = prober.run(
        7,
        &["/bin/sh", "-c", "sleep 1000 & echo started; wait"],
        Duration::from_millis(500),
    );
    assert_eq!((slow.end, text(&slow)), (End::TimedOut, "started\n"));
    assert!(start.elapsed() < Duration::from_secs(5));

    let mut chatty = Request {
        id: 8,
        timeout_ms: 5000,
        max_output: 7,
        candidates: vec![b"/usr/bin/seq".to_vec()],
        argv: vec![b"seq".to_vec(), b"1".to_vec(), b"100000".to_vec()],
        envp: Vec::new(),
    };
    assert_eq!(text(&prober.ask(&chatty.encode().unwrap())), "100000\n");
    // A malformed request runs nothing and is answered with its id.
    chatty.id = 9;
    let mut packet = chatty.encode().unwrap();
    packet.pop();
    let refused = prober.ask(&packet);
    assert_eq!(
        (refused.id, refused.end),
        (9, End::ProberFailed(libc::EINVAL))
    );
    // And the prober still serves.
    assert_eq!(prober.run(10, &["/bin/true"], second).end, End::Exited(0));
}

#[test]
fn a_prober_ends_with_the_main_process_it_serves_or_when_systemk_goes() {
    let mut prober = Prober::start();
    prober.main.kill().unwrap();
    prober.main.wait().unwrap();
    prober.ends("the prober to end with the main process");

    let mut prober = Prober::start();
    let (_, closed) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    prober.socket = closed;
    prober.ends("the prober to end with systemk's end of its socket");
}

#[test]
fn a_command_does_not_outlive_its_prober() {
    let mut prober = Prober::start();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!("echo $$ > {}; exec /bin/sleep 1000", pid_file.display());
    let request = Request {
        id: 1,
        timeout_ms: 600_000,
        max_output: 0,
        candidates: vec![b"/bin/sh".to_vec()],
        argv: vec![b"sh".to_vec(), b"-c".to_vec(), script.into_bytes()],
        envp: Vec::new(),
    };
    send(
        prober.socket.as_raw_fd(),
        &request.encode().unwrap(),
        MsgFlags::empty(),
    )
    .unwrap();
    let command: u32 = wait_until("the command to start", || {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    });
    prober.process.kill().unwrap();
    prober.process.wait().unwrap();
    wait_until("the command to end with its prober", || {
        let stat = std::fs::read_to_string(format!("/proc/{command}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for its new parent.
        (stat.is_empty() || stat.rsplit_once(')')?.1.trim_start().starts_with('Z')).then_some(())
    });
}

/// Polls `probe` every 20 ms until it gives a value; panics after 10 s.
fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
