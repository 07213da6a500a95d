//! Pty allocation: the devpts checks, TIOCGPTPEER identity, and refusal of impostors.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use berth_tty::TtyError;
use berth_tty::pty::{self, PtyPair, Reopen};
use rustix::fs::{self, Mode, OFlags};

fn dir_fd(path: &std::path::Path) -> OwnedFd {
    fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .expect("open dir")
}

fn check_pair(pair: &PtyPair) {
    // The peer is the devpts char device 136:N and its name is /dev/pts/N.
    let st = fs::fstat(&pair.peer).unwrap();
    assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFCHR);
    assert_eq!(fs::major(st.st_rdev), 136);
    assert_eq!(fs::minor(st.st_rdev), pair.index);
    assert_eq!(pair.peer_name(), format!("/dev/pts/{}", pair.index));
    let name = rustix::termios::ttyname(&pair.peer, Vec::new()).unwrap();
    assert_eq!(name.to_str().unwrap(), pair.peer_name());
    // The master and peer are connected, and both are close-on-exec.
    rustix::io::write(&pair.master, b"ping\n").unwrap();
    let mut buf = [0u8; 16];
    let n = rustix::io::read(&pair.peer, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping\n");
    for fd in [&pair.master, &pair.peer] {
        assert!(
            rustix::io::fcntl_getfd(fd)
                .unwrap()
                .contains(rustix::io::FdFlags::CLOEXEC)
        );
    }
    // The master answers TIOCGPTN with the same index.
    assert_eq!(pty::master_index(pair.master.as_fd()).unwrap(), pair.index);
    // Neither is our controlling terminal (O_NOCTTY).
    assert_eq!(
        rustix::termios::tcgetpgrp(&pair.peer).unwrap_err(),
        rustix::io::Errno::NOTTY
    );
}

#[test]
fn open_in_dev_pts_passes_every_check() {
    let devpts = dir_fd("/dev/pts".as_ref());
    let pair = PtyPair::open_in(devpts.as_fd()).expect("open_in /dev/pts");
    check_pair(&pair);
    // The master is the devpts ptmx inode (2, char 5:2, devpts magic).
    let st = pty::verify_ptmx(pair.master.as_fd()).expect("master is the devpts ptmx");
    assert_eq!(st.st_ino, 2);
    // And it is blocking (the openat fallback's O_NONBLOCK must not leak either).
    assert!(
        !fs::fcntl_getfl(&pair.master)
            .unwrap()
            .contains(OFlags::NONBLOCK)
    );
}

#[test]
fn open_in_without_proc_uses_openat_and_clears_nonblock() {
    let devpts = dir_fd("/dev/pts".as_ref());
    let pair = PtyPair::open_in_via(devpts.as_fd(), Reopen::Openat).expect("open_in_via Openat");
    check_pair(&pair);
    assert!(
        !fs::fcntl_getfl(&pair.master)
            .unwrap()
            .contains(OFlags::NONBLOCK)
    );
}

#[test]
fn two_pairs_get_distinct_peers() {
    let a = PtyPair::open_host().unwrap();
    let b = PtyPair::open_host().unwrap();
    assert_ne!(a.index, b.index);
    check_pair(&a);
    check_pair(&b);
}

#[test]
fn open_host_works() {
    let pair = PtyPair::open_host().expect("open_host");
    check_pair(&pair);
}

#[test]
fn from_master_accepts_dev_ptmx_and_rejects_other_files() {
    let master = fs::open(
        "/dev/ptmx",
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    let pair = PtyPair::from_master(master).expect("from_master /dev/ptmx");
    check_pair(&pair);

    let null = fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).unwrap();
    let err = PtyPair::from_master(null).unwrap_err();
    assert!(
        matches!(
            err,
            TtyError::NotAMaster {
                major: 1,
                minor: 3,
                ..
            }
        ),
        "{err}"
    );
}

fn expect_refusal(dir: &std::path::Path) -> TtyError {
    let fd = dir_fd(dir);
    let start = Instant::now();
    let err = PtyPair::open_in(fd.as_fd()).expect_err("must refuse");
    // Never blocks (a FIFO opened for reading without a writer would).
    assert!(start.elapsed() < Duration::from_secs(2));
    err
}

#[test]
fn refuses_a_regular_file_named_ptmx_on_tmpfs() {
    // /dev/shm is a tmpfs (TMPFS_MAGIC 0x01021994), like a container's /dev.
    let shm = fs::statfs("/dev/shm").unwrap();
    assert_eq!(
        shm.f_type as u64, 0x0102_1994,
        "/dev/shm is not a tmpfs here"
    );
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    std::fs::write(dir.path().join("ptmx"), b"not a pty").unwrap();
    let err = expect_refusal(dir.path());
    let msg = err.to_string();
    assert!(matches!(err, TtyError::PtmxNotDevpts { .. }), "{msg}");
    assert!(
        msg.starts_with("devpts ptmx: not a devpts filesystem (magic 0x"),
        "{msg}"
    );
}

#[test]
fn refuses_a_fifo_named_ptmx_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let dfd = dir_fd(dir.path());
    fs::mknodat(
        &dfd,
        "ptmx",
        fs::FileType::Fifo,
        Mode::from_raw_mode(0o666),
        0,
    )
    .unwrap();
    let err = expect_refusal(dir.path());
    assert!(matches!(err, TtyError::PtmxNotDevpts { .. }), "{err}");
}

#[test]
fn refuses_a_symlink_to_the_real_ptmx() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/pts/ptmx", dir.path().join("ptmx")).unwrap();
    let err = expect_refusal(dir.path());
    assert!(matches!(err, TtyError::PtmxNotDevpts { .. }), "{err}");
}

#[test]
fn refuses_a_directory_without_ptmx() {
    let dir = tempfile::tempdir().unwrap();
    let err = expect_refusal(dir.path());
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    assert!(err.to_string().starts_with("open devpts ptmx: "), "{err}");
}

#[test]
fn refuses_dev_as_devpts() {
    // /dev is devtmpfs: its ptmx is char 5:2 but not on devpts.
    let err = expect_refusal("/dev".as_ref());
    assert!(matches!(err, TtyError::PtmxNotDevpts { .. }), "{err}");
}

#[test]
fn verify_ptmx_reports_wrong_inode_and_device() {
    // A devpts peer is on devpts but is not inode 2: the inode check fires.
    let pair = PtyPair::open_host().unwrap();
    let err = pty::verify_ptmx(pair.peer.as_fd()).unwrap_err();
    assert!(matches!(err, TtyError::PtmxWrongInode { .. }), "{err}");
    assert!(err.to_string().contains("wrong inode"), "{err}");
}

#[test]
fn verify_peer_rejects_wrong_index_and_non_peers() {
    let pair = PtyPair::open_host().unwrap();
    assert!(pty::verify_peer(pair.peer.as_fd(), pair.index).is_ok());
    let err = pty::verify_peer(pair.peer.as_fd(), pair.index + 1).unwrap_err();
    assert!(matches!(err, TtyError::PeerWrongDevice { .. }), "{err}");
    // The master is on devpts but is 5:2.
    let err = pty::verify_peer(pair.master.as_fd(), pair.index).unwrap_err();
    assert!(
        matches!(
            err,
            TtyError::PeerWrongDevice {
                major: 5,
                minor: 2,
                ..
            }
        ),
        "{err}"
    );
    let null = fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).unwrap();
    let err = pty::verify_peer(null.as_fd(), 0).unwrap_err();
    assert!(matches!(err, TtyError::PeerNotDevpts { .. }), "{err}");
}

/// A fresh devpts instance, as a container has: mounted in a new user and mount namespace (no
/// root needed where unprivileged user namespaces are allowed) by util-linux `unshare`/`mount`.
#[test]
fn open_in_a_new_devpts_instance_allocates_there() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(r#"mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,max=2 devpts "$1" && exec "$2" --selftest open-in "$1""#)
        .arg("sh")
        .arg(dir.path())
        .arg(env!("CARGO_BIN_EXE_berth-tty-run"))
        .output()
        .expect("unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        "0 1 same-instance\nthird: open devpts ptmx: No space left on device (os error 28)\n"
    );
}
