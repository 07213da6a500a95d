//! Redraw on re-attach: a full-screen program (busybox `vi`, then `top`) runs in the container;
//! one tmux terminal stays attached from before the program started, another attaches
//! afterwards and only gets the monitor's repaint. tmux's `capture-pane` of both, and `berth
//! screenshot` (the monitor's screen model), must show the same screen, the same cursor and
//! the same alternate-screen state.

mod monitor_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_itest::Cmd;
use monitor_support::{Mon, T, berth_bin, monitor_bin, shell_bundle};

/// A private tmux server (its own socket) with one 80x24 window, status line off.
struct Tmux {
    socket: String,
    _conf: tempfile::TempDir,
    conf: PathBuf,
}

impl Tmux {
    fn new(name: &str, cmd: &str) -> Tmux {
        let conf_dir = tempfile::tempdir().unwrap();
        let conf = conf_dir.path().join("tmux.conf");
        std::fs::write(&conf, "set -g status off\nset -g history-limit 0\n").unwrap();
        let t = Tmux {
            socket: format!("berth-itest-{name}-{}", std::process::id()),
            _conf: conf_dir,
            conf,
        };
        t.tmux(&[
            "new-session",
            "-d",
            "-x",
            "80",
            "-y",
            "24",
            "-s",
            "main",
            cmd,
        ])
        .ok();
        t
    }

    fn tmux(&self, args: &[&str]) -> Cmd {
        Cmd::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.conf)
            .args(args)
    }

    fn keys(&self, keys: &[&str]) {
        self.tmux(&["send-keys", "-t", "main"]).args(keys).ok();
    }

    fn capture(&self, escapes: bool) -> String {
        let mut a = vec!["capture-pane", "-p", "-t", "main"];
        if escapes {
            a.push("-e");
        }
        self.tmux(&a).ok().stdout_str()
    }

    fn state(&self) -> String {
        self.tmux(&[
            "display-message",
            "-p",
            "-t",
            "main",
            "#{cursor_x},#{cursor_y} alt=#{alternate_on} #{pane_width}x#{pane_height}",
        ])
        .ok()
        .stdout_str()
        .trim()
        .to_string()
    }

    #[track_caller]
    fn wait_for(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let c = self.capture(false);
            if c.contains(needle) {
                return c;
            }
            if start.elapsed() > T {
                panic!("tmux {} never showed {needle:?}:\n{c}", self.socket);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]).run();
    }
}

/// The lines of a capture without trailing empty lines.
fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(|l| l.trim_end().to_string()).collect();
    while v.last().is_some_and(String::is_empty) {
        v.pop();
    }
    v
}

/// Waits until two consecutive captures of `t` are equal (the program stopped drawing).
fn settled(t: &Tmux) -> String {
    let mut last = t.capture(true);
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = t.capture(true);
        if now == last || start.elapsed() > T {
            return t.capture(false);
        }
        last = now;
    }
}

fn attach_cmd(m: &Mon, id: &str) -> String {
    format!(
        "BERTH_MONITOR={} {} --root {} attach {id}; sleep 600",
        monitor_bin().display(),
        berth_bin().display(),
        m.rt.root().display()
    )
}

fn compare(m: &Mon, id: &str, stayed: &Tmux, fresh: &Tmux, needle: &str) {
    fresh.wait_for(needle);
    let a = settled(stayed);
    let b = settled(fresh);
    assert_eq!(
        lines(&a),
        lines(&b),
        "re-attached screen differs:\n{a}\n---\n{b}"
    );
    let shot = m.screenshot(id);
    assert_eq!(
        lines(&shot),
        lines(&a),
        "screen model differs:\n{shot}\n---\n{a}"
    );
    assert_eq!(
        stayed.state(),
        fresh.state(),
        "cursor or alternate screen differs"
    );
    assert_eq!(
        stayed.capture(true),
        fresh.capture(true),
        "colours or attributes differ"
    );
}

#[test]
fn vi_screen_after_reattach_equals_a_terminal_that_stayed() {
    let m = Mon::new();
    let b = shell_bundle();
    std::fs::write(
        b.rootfs().join("etc/poem"),
        (1..=40)
            .map(|i| format!("line {i}: the quick brown fox jumps over the lazy dog\n"))
            .collect::<String>(),
    )
    .unwrap();
    let id = m.rt.id("redraw-vi");
    m.start(&b, &id);
    m.wait_screen(&id, "/ #");
    let stayed = Tmux::new(&format!("{id}-a"), &attach_cmd(&m, &id));
    stayed.wait_for("/ #");
    stayed.keys(&["vi /etc/poem", "Enter"]);
    stayed.wait_for("line 20:");
    // One key group at a time: vi takes an Escape followed at once by more bytes for the
    // start of an escape sequence.
    for k in [
        &["3G", "dd"][..],
        &["10G"],
        &["o", "an inserted line"],
        &["Escape"],
        &["5G", "w"],
    ] {
        stayed.keys(k);
        std::thread::sleep(Duration::from_millis(150));
    }
    stayed.wait_for("an inserted line");
    let fresh = Tmux::new(&format!("{id}-b"), &attach_cmd(&m, &id));
    compare(&m, &id, &stayed, &fresh, "an inserted line");
    assert!(stayed.state().contains("80x24"), "{}", stayed.state());

    // Leaving vi restores the shell screen in both.
    fresh.keys(&[":q!", "Enter"]);
    stayed.wait_for("/ #");
    fresh.wait_for("/ #");
    assert_eq!(stayed.state(), fresh.state());
}

#[test]
fn top_screen_after_reattach_equals_a_terminal_that_stayed() {
    let m = Mon::new();
    let b = shell_bundle();
    let id = m.rt.id("redraw-top");
    m.start(&b, &id);
    m.wait_screen(&id, "/ #");
    let stayed = Tmux::new(&format!("{id}-a"), &attach_cmd(&m, &id));
    stayed.wait_for("/ #");
    // One refresh every 1000 s: the screen is static once drawn.
    stayed.keys(&["top -d 1000", "Enter"]);
    stayed.wait_for("PID");
    let fresh = Tmux::new(&format!("{id}-b"), &attach_cmd(&m, &id));
    compare(&m, &id, &stayed, &fresh, "PID");
    stayed.keys(&["q"]);
    fresh.wait_for("/ #");
}
