//! The console-socket wire format, its receiver's checks, and every connect error.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_tty::console_socket::{ConsoleListener, ConsoleSocket, recv_master, send_fd};
use berth_tty::{MASTER_NAME, PtyPair, TtyError, pty};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

/// The received master really is the pty: bytes written to the peer come out of it.
fn check_master_works(pair_peer: BorrowedFd<'_>, master: &OwnedFd, index: u32) {
    assert_eq!(pty::master_index(master.as_fd()).unwrap(), index);
    assert!(
        rustix::io::fcntl_getfd(master)
            .unwrap()
            .contains(rustix::io::FdFlags::CLOEXEC)
    );
    berth_tty::set_onlcr(pair_peer, false).unwrap();
    rustix::io::write(pair_peer, b"hello\n").unwrap();
    let mut buf = [0u8; 16];
    let n = rustix::io::read(master, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello\n");
}

/// Receives with a raw recvmsg and counts messages and fds, independently of `recv_master`.
fn raw_receive(sock: BorrowedFd<'_>) -> (Vec<u8>, usize, Vec<OwnedFd>) {
    let mut data = [0u8; 8192];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(8))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(&mut data)];
    let msg = rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC).unwrap();
    let mut messages = 0;
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(it) = m {
            messages += 1;
            fds.extend(it);
        }
    }
    (data[..msg.bytes].to_vec(), messages, fds)
}

#[test]
fn socketpair_round_trip() {
    let pair = PtyPair::open_host().unwrap();
    let (tx, rx) = ConsoleSocket::socketpair().unwrap();
    tx.send_master(MASTER_NAME, pair.master.as_fd()).unwrap();
    let (name, master) = recv_master(rx.as_fd()).unwrap();
    assert_eq!(name, "/dev/pts/ptmx");
    check_master_works(pair.peer.as_fd(), &master, pair.index);
}

#[test]
fn wire_format_is_one_message_with_exactly_one_fd() {
    let pair = PtyPair::open_host().unwrap();
    let (tx, rx) = ConsoleSocket::socketpair().unwrap();
    tx.send_master(MASTER_NAME, pair.master.as_fd()).unwrap();
    drop(tx);
    let (data, messages, fds) = raw_receive(rx.as_fd());
    assert_eq!(data, b"/dev/pts/ptmx");
    assert_eq!(messages, 1);
    assert_eq!(fds.len(), 1);
    check_master_works(pair.peer.as_fd(), &fds[0], pair.index);
    // Nothing else follows: the next read is EOF.
    let mut buf = [0u8; 8];
    assert_eq!(rustix::io::read(&rx, &mut buf).unwrap(), 0);
}

/// An independent receiver (Python's recvmsg, like go-runc's and conmon's): the control message
/// is SOL_SOCKET/SCM_RIGHTS with a 4-byte payload, i.e. cmsg_len == CMSG_LEN(sizeof(int)).
#[test]
fn python_receiver_sees_cmsg_len_of_one_int() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("console.sock");
    let script = r#"
import socket, sys, os, stat
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
data, anc, flags, _ = c.recvmsg(4096, socket.CMSG_SPACE(4 * 16))
assert len(anc) == 1, anc
level, typ, payload = anc[0]
assert level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS, anc
fd = int.from_bytes(payload, sys.byteorder)
st = os.fstat(fd)
print(data.decode(), len(payload), stat.S_ISCHR(st.st_mode), os.major(st.st_rdev), os.minor(st.st_rdev), flags)
"#;
    let mut py = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = std::io::BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    let pair = PtyPair::open_host().unwrap();
    let sock = ConsoleSocket::connect(&path).unwrap();
    sock.send_master(MASTER_NAME, pair.master.as_fd()).unwrap();
    let rest = std::io::read_to_string(out).unwrap();
    assert!(py.wait().unwrap().success());
    assert_eq!(rest, "/dev/pts/ptmx 4 True 5 2 0\n");
}

#[test]
fn bound_path_round_trip_and_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = dir.path().join("console.sock");
    let listener = ConsoleListener::bind(&path).unwrap();
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(meta.permissions().mode() & libc::S_IFMT, libc::S_IFSOCK);

    let pair = PtyPair::open_host().unwrap();
    let sender = {
        let path = path.clone();
        let master = pair.master.try_clone().unwrap();
        std::thread::spawn(move || {
            let sock = ConsoleSocket::connect(&path).unwrap();
            assert!(
                rustix::io::fcntl_getfd(&sock)
                    .unwrap()
                    .contains(rustix::io::FdFlags::CLOEXEC)
            );
            sock.send_master(MASTER_NAME, master.as_fd()).unwrap();
        })
    };
    let (name, master) = listener.accept_master().unwrap();
    sender.join().unwrap();
    assert_eq!(name, MASTER_NAME);
    check_master_works(pair.peer.as_fd(), &master, pair.index);
    listener.remove().unwrap();
    assert!(!path.exists());
}

#[test]
fn relative_path_is_relative_to_the_cwd() {
    // Run in a child so the test process's cwd is left alone.
    let dir = tempfile::tempdir().unwrap();
    let listener = ConsoleListener::bind(&dir.path().join("rel.sock")).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_berth-tty-run"))
        .current_dir(dir.path())
        .args(["--selftest", "send-console", "rel.sock"])
        .status()
        .unwrap();
    assert!(status.success());
    let (name, master) = listener.accept_master().unwrap();
    assert_eq!(name, MASTER_NAME);
    pty::master_index(master.as_fd()).unwrap();
}

fn connect_err(path: &Path) -> TtyError {
    ConsoleSocket::connect(path).expect_err("connect must fail")
}

#[test]
fn connect_missing_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.sock");
    let err = connect_err(&path);
    assert!(matches!(err, TtyError::SocketMissing { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("console socket {}: does not exist", path.display())
    );
}

#[test]
fn connect_regular_file_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let err = connect_err(&file);
    assert_eq!(
        err.to_string(),
        format!(
            "console socket {}: is not a socket (it is a regular file)",
            file.display()
        )
    );
    let err = connect_err(dir.path());
    assert_eq!(
        err.to_string(),
        format!(
            "console socket {}: is not a socket (it is a directory)",
            dir.path().display()
        )
    );
}

fn bound_socket(path: &Path, ty: SocketType, listen: bool) -> OwnedFd {
    let fd = rustix::net::socket_with(AddressFamily::UNIX, ty, SocketFlags::CLOEXEC, None).unwrap();
    rustix::net::bind(&fd, &SocketAddrUnix::new(path).unwrap()).unwrap();
    if listen {
        rustix::net::listen(&fd, 1).unwrap();
    }
    fd
}

#[test]
fn connect_bound_but_not_listening_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deaf.sock");
    let _fd = bound_socket(&path, SocketType::STREAM, false);
    let err = connect_err(&path);
    assert!(matches!(err, TtyError::SocketRefused { .. }), "{err}");
    assert!(err.to_string().contains("connection refused"), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn connect_datagram_and_seqpacket_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let dgram = dir.path().join("dgram.sock");
    let _d = bound_socket(&dgram, SocketType::DGRAM, false);
    let err = connect_err(&dgram);
    assert_eq!(
        err.to_string(),
        format!(
            "console socket {}: is not a stream socket (EPROTOTYPE)",
            dgram.display()
        )
    );
    let seq = dir.path().join("seq.sock");
    let _s = bound_socket(&seq, SocketType::SEQPACKET, true);
    let err = connect_err(&seq);
    assert!(matches!(err, TtyError::NotStreamSocket { .. }), "{err}");
}

#[test]
fn connect_path_longer_than_sun_path() {
    let long = PathBuf::from(format!("/tmp/{}", "x".repeat(115)));
    assert_eq!(long.as_os_str().len(), 120);
    let err = connect_err(&long);
    assert!(
        matches!(err, TtyError::SocketPathTooLong { len: 120, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("longer than the 108-byte sun_path limit"),
        "{err}"
    );
    // 108 bytes does not fit either (no room for the NUL); 107 is accepted as a path.
    let p108 = PathBuf::from(format!("/tmp/{}", "y".repeat(103)));
    assert!(matches!(
        connect_err(&p108),
        TtyError::SocketPathTooLong { len: 108, .. }
    ));
    let p107 = PathBuf::from(format!("/tmp/{}", "z".repeat(102)));
    assert!(matches!(connect_err(&p107), TtyError::SocketMissing { .. }));
}

#[test]
fn long_but_fitting_path_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().as_os_str().len() + 1;
    let path = dir.path().join("s".repeat(107 - base));
    assert_eq!(path.as_os_str().len(), 107);
    let listener = ConsoleListener::bind(&path).unwrap();
    let pair = PtyPair::open_host().unwrap();
    let sock = ConsoleSocket::connect(&path).unwrap();
    sock.send_master(MASTER_NAME, pair.master.as_fd()).unwrap();
    let (name, _master) = listener.accept_master().unwrap();
    assert_eq!(name, MASTER_NAME);
}

fn send_raw(sock: BorrowedFd<'_>, data: &[u8], groups: &[&[BorrowedFd<'_>]]) {
    let mut space = [MaybeUninit::<u8>::uninit(); 256];
    let mut control = SendAncillaryBuffer::new(&mut space);
    for g in groups {
        assert!(control.push(SendAncillaryMessage::ScmRights(g)));
    }
    let iov = [IoSlice::new(data)];
    assert_eq!(
        rustix::net::sendmsg(sock, &iov, &mut control, SendFlags::empty()).unwrap(),
        data.len()
    );
}

/// A pipe whose write end is what we send; the read end tells whether every copy got closed.
fn probe_pipe() -> (OwnedFd, OwnedFd) {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK)
        .unwrap()
}

fn assert_all_copies_closed(read_end: &OwnedFd) {
    let mut b = [0u8; 1];
    assert_eq!(
        rustix::io::read(read_end, &mut b).unwrap(),
        0,
        "a received fd was leaked"
    );
}

#[test]
fn receiver_rejects_two_fds_and_closes_both() {
    let (tx, rx) = ConsoleSocket::socketpair().unwrap();
    let (r, w) = probe_pipe();
    let w2 = w.try_clone().unwrap();
    send_raw(tx.as_fd(), b"/dev/pts/ptmx", &[&[w.as_fd(), w2.as_fd()]]);
    drop((w, w2));
    let err = recv_master(rx.as_fd()).unwrap_err();
    assert!(
        matches!(
            err,
            TtyError::BadFdCount {
                messages: 1,
                fds: 2
            }
        ),
        "{err}"
    );
    assert_all_copies_closed(&r);
}

#[test]
fn receiver_rejects_two_scm_rights_messages() {
    // Linux merges the fds of several SCM_RIGHTS headers into one message on receipt.
    let (tx, rx) = ConsoleSocket::socketpair().unwrap();
    let (r, w) = probe_pipe();
    let w2 = w.try_clone().unwrap();
    send_raw(tx.as_fd(), b"x", &[&[w.as_fd()], &[w2.as_fd()]]);
    drop((w, w2));
    let err = recv_master(rx.as_fd()).unwrap_err();
    assert!(matches!(err, TtyError::BadFdCount { fds: 2, .. }), "{err}");
    assert_all_copies_closed(&r);
}

#[test]
fn receiver_rejects_no_fd_and_eof() {
    let (tx, rx) = ConsoleSocket::socketpair().unwrap();
    rustix::io::write(&tx, b"/dev/pts/ptmx").unwrap();
    let err = recv_master(rx.as_fd()).unwrap_err();
    assert!(
        matches!(
            err,
            TtyError::BadFdCount {
                messages: 0,
                fds: 0
            }
        ),
        "{err}"
    );
    drop(tx);
    let err = recv_master(rx.as_fd()).unwrap_err();
    assert!(matches!(err, TtyError::SocketClosed), "{err}");
}

#[test]
fn receiver_rejects_truncated_control_data_and_closes_what_arrived() {
    let (tx, rx) = ConsoleSocket::socketpair().unwrap();
    let (r, w) = probe_pipe();
    let copies: Vec<OwnedFd> = (0..40).map(|_| w.try_clone().unwrap()).collect();
    let borrowed: Vec<BorrowedFd<'_>> = copies.iter().map(|f| f.as_fd()).collect();
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(40))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    assert!(control.push(SendAncillaryMessage::ScmRights(&borrowed)));
    rustix::net::sendmsg(&tx, &[IoSlice::new(b"n")], &mut control, SendFlags::empty()).unwrap();
    drop((w, copies));
    let err = recv_master(rx.as_fd()).unwrap_err();
    assert!(matches!(err, TtyError::ControlTruncated), "{err}");
    assert_all_copies_closed(&r);
}

#[test]
fn receiver_rejects_a_name_of_4096_bytes() {
    let (tx, rx) = ConsoleSocket::socketpair().unwrap();
    let (_r, w) = probe_pipe();
    send_raw(tx.as_fd(), &[b'a'; 5000], &[&[w.as_fd()]]);
    let err = recv_master(rx.as_fd()).unwrap_err();
    assert!(matches!(err, TtyError::NameTooLong { len: 4096 }), "{err}");
    // The sender refuses such names itself, and empty ones (a zero-byte send carries no fd).
    assert!(matches!(
        send_fd(tx.as_fd(), &[b'a'; 4096], w.as_fd()),
        Err(TtyError::NameTooLong { .. })
    ));
    assert!(matches!(
        tx.send_master("", w.as_fd()),
        Err(TtyError::EmptyName)
    ));
    // 4095 bytes is fine.
    let (tx, rx) = ConsoleSocket::socketpair().unwrap();
    let name = "n".repeat(4095);
    tx.send_master(&name, w.as_fd()).unwrap();
    assert_eq!(recv_master(rx.as_fd()).unwrap().0, name);
}

#[test]
fn receiver_rejects_non_utf8_names() {
    let (tx, rx) = ConsoleSocket::socketpair().unwrap();
    let (_r, w) = probe_pipe();
    send_raw(tx.as_fd(), b"\xff\xfe", &[&[w.as_fd()]]);
    assert!(matches!(
        recv_master(rx.as_fd()),
        Err(TtyError::NameNotUtf8)
    ));
}

#[test]
fn abstract_names_work_like_runc() {
    let name = format!(
        "@berth-tty-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    );
    let path = Path::new(&name);
    let err = connect_err(path);
    assert!(matches!(err, TtyError::SocketRefused { .. }), "{err}");
    let listener = ConsoleListener::bind(path).unwrap();
    assert!(
        !Path::new(&name).exists(),
        "an abstract socket must not create a file"
    );
    let pair = PtyPair::open_host().unwrap();
    let sock = ConsoleSocket::connect(path).unwrap();
    sock.send_master(MASTER_NAME, pair.master.as_fd()).unwrap();
    let (got, master) = listener.accept_master().unwrap();
    assert_eq!(got, MASTER_NAME);
    check_master_works(pair.peer.as_fd(), &master, pair.index);
    listener.remove().unwrap();
}
