//! Window sizes on real ptys and the consoleSize conversion.

use std::os::fd::AsFd;

use berth_tty::{PtyPair, TtyError, Winsize};

#[test]
fn set_on_master_is_seen_on_peer_and_back() {
    let pair = PtyPair::open_host().unwrap();
    let ws = Winsize::new(34, 12);
    ws.set(pair.master.as_fd()).unwrap();
    assert_eq!(Winsize::get(pair.peer.as_fd()).unwrap(), ws);
    let ws2 = Winsize::new(65535, 1);
    ws2.set(pair.peer.as_fd()).unwrap();
    assert_eq!(Winsize::get(pair.master.as_fd()).unwrap(), ws2);
    assert!(!ws2.is_zero());
}

#[test]
fn a_new_pty_has_a_zero_size() {
    let pair = PtyPair::open_host().unwrap();
    let ws = Winsize::get(pair.peer.as_fd()).unwrap();
    assert!(ws.is_zero(), "{ws}");
}

#[test]
fn get_on_a_non_tty_names_the_fd() {
    let null = std::fs::File::open("/dev/null").unwrap();
    let err = Winsize::get(null.as_fd()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTTY));
    assert!(
        err.to_string().starts_with("ioctl(TIOCGWINSZ) fd "),
        "{err}"
    );
}

#[test]
fn console_size_conversion() {
    assert_eq!(
        Winsize::from_console_size(0, 0).unwrap(),
        Winsize::new(0, 0)
    );
    assert!(Winsize::from_console_size(0, 0).unwrap().is_zero());
    assert!(!Winsize::from_console_size(0, 80).unwrap().is_zero());
    assert_eq!(
        Winsize::from_console_size(1, 1).unwrap(),
        Winsize::new(1, 1)
    );
    assert_eq!(
        Winsize::from_console_size(65535, 65535).unwrap(),
        Winsize::new(65535, 65535)
    );
    assert_eq!(
        Winsize::from_console_size(10, 110).unwrap(),
        Winsize {
            rows: 10,
            cols: 110
        }
    );

    let err = Winsize::from_console_size(65536, 80).unwrap_err();
    assert!(matches!(
        err,
        TtyError::SizeTooLarge {
            dimension: "height",
            value: 65536
        }
    ));
    assert_eq!(
        err.to_string(),
        "console size height 65536 is out of range (at most 65535)"
    );
    let err = Winsize::from_console_size(24, 100000).unwrap_err();
    assert_eq!(
        err.to_string(),
        "console size width 100000 is out of range (at most 65535)"
    );
    let err = Winsize::from_console_size(u64::MAX, 1).unwrap_err();
    assert!(err.to_string().contains(&u64::MAX.to_string()));
}
