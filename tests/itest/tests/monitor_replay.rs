//! Replay and logs: every output byte has an offset; `logs --since X` and `attach --since X`
//! give exactly the bytes from X on, across log rotations and out of a small ring; a replay
//! that turns into live output has no gap and no duplicate; `--tail N`; rotation by rename
//! (files kept, oldest deleted, never truncated); the CRI log (ONLCR undone); the asciicast
//! recording with its resize events.

mod monitor_support;

use std::time::Duration;

use berth_itest::{MasterIo, Sink, wait_until};
use berth_proto::{Frame, Start};
use monitor_support::{Mon, Raw, T, expect, hello, script_bundle, shell_bundle, typ, wait_exit};

/// The container waits for a line, then prints `seq 1 N` and END.
fn seq_bundle(n: u32, annotations: &[(&str, &str)]) -> berth_itest::Bundle {
    let mut b = script_bundle(&format!("read x; seq 1 {n}; echo END; exec sleep 1000"));
    for (k, v) in annotations {
        b.annotation(k, v);
    }
    b
}

/// What that container writes to its terminal: the echo of the typed line, the numbers and
/// END, each line ending `\r\n` (ONLCR, kept in the raw log).
fn seq_output(n: u32) -> Vec<u8> {
    let mut v = b"\r\n".to_vec();
    for i in 1..=n {
        v.extend_from_slice(format!("{i}\r\n").as_bytes());
    }
    v.extend_from_slice(b"END\r\n");
    v
}

/// Presses Enter in the console (through a client that detaches at once).
fn enter(m: &Mon, id: &str) {
    let r = Raw::connect(m, id);
    r.send(&hello(|h| h.start = Start::Live));
    r.send(&Frame::Stdin(b"\r"));
    r.send(&Frame::Detach);
    r.recv_until(T, |f| matches!(f, Frame::Detached));
}

/// Waits until the console's output offset reaches `n`.
fn wait_offset(m: &Mon, id: &str, n: u64) {
    wait_until("output offset", T, || {
        (m.session(id, "console")["offset"].as_u64()? >= n).then_some(())
    });
}

#[test]
fn replay_from_any_offset_is_exact_across_rotation() {
    let m = Mon::new();
    let b = seq_bundle(
        30000,
        &[
            ("io.github.berth.monitor.log-max-size", "64K"),
            ("io.github.berth.monitor.log-max-files", "100"),
            ("io.github.berth.monitor.ring-size", "16K"),
        ],
    );
    let id = m.rt.id("replay-rotate");
    m.start(&b, &id);
    enter(&m, &id);
    let want = seq_output(30000);
    wait_offset(&m, &id, want.len() as u64);
    let s = m.session(&id, "console");
    assert!(s["rotations"].as_u64().unwrap() >= 3, "{s}");
    assert_eq!(
        s["log_oldest"], 0,
        "nothing may be deleted with 100 files: {s}"
    );
    assert!(
        s["ring_start"].as_u64().unwrap() > 150_000,
        "the ring should hold only the tail: {s}"
    );

    let all = m.logs(&id, &[]);
    assert_eq!(all.len(), want.len());
    assert!(
        all == want,
        "the log is not the container's output byte for byte"
    );
    // The files: NAME.K … NAME.1, NAME, oldest first, are the stream; each is at most 64 KiB.
    let dir = m.dir(&id);
    let mut files = Vec::new();
    for k in (1..100).rev() {
        let p = dir.join(format!("console.log.{k}"));
        if p.exists() {
            files.push(p);
        }
    }
    files.push(dir.join("console.log"));
    // Bulk output reaches the files within the monitor's flush interval (20 ms).
    wait_until("the log files complete", T, || {
        let n: u64 = files
            .iter()
            .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
            .sum();
        (n == want.len() as u64).then_some(())
    });
    let mut cat = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            bytes.len() <= 64 * 1024,
            "{} is {} bytes",
            f.display(),
            bytes.len()
        );
        cat.extend(bytes);
    }
    assert!(cat == want, "the rotated files are not the stream");

    for x in [
        0usize,
        1,
        1000,
        65535,
        65536,
        65537,
        100_000,
        131_072,
        want.len() - 20_000,
        want.len() - 10,
        want.len(),
    ] {
        let got = m.logs(&id, &["--since", &x.to_string()]);
        assert!(
            got == want[x..],
            "logs --since {x}: {} bytes, want {}",
            got.len(),
            want.len() - x
        );
    }
    let tail = m.logs(&id, &["--tail", "3"]);
    assert_eq!(tail, b"29999\r\n30000\r\nEND\r\n");
    // attach --since: the same bytes, then it stays for live output.
    let watcher = m
        .berth([
            "attach",
            "--since",
            "70000",
            "--read-only",
            "--no-stdin",
            "--lag-policy",
            "catch-up",
            &id,
        ])
        .stdout(Sink::Capture)
        .spawn();
    wait_until("the watcher caught up", T, || {
        let c = m.session(&id, "console")["clients"][0].clone();
        (c["bytes"].as_u64()? == (want.len() - 70_000) as u64).then_some(())
    });
    watcher.signal(rustix::process::Signal::TERM);
    let out = wait_exit(watcher);
    assert!(out.stdout == want[70_000..], "attach --since 70000 differs");
    // Past the end is an error naming the offset.
    let out = m
        .berth(["logs", "--since", &(want.len() + 1).to_string(), &id])
        .run();
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr_str().contains("beyond the end of the output"),
        "{out}"
    );
}

#[test]
fn rotation_deletes_the_oldest_files_and_replay_says_so() {
    let m = Mon::new();
    let b = seq_bundle(
        30000,
        &[
            ("io.github.berth.monitor.log-max-size", "32K"),
            ("io.github.berth.monitor.log-max-files", "2"),
            ("io.github.berth.monitor.ring-size", "16K"),
        ],
    );
    let id = m.rt.id("replay-deleted");
    m.start(&b, &id);
    enter(&m, &id);
    let want = seq_output(30000);
    wait_offset(&m, &id, want.len() as u64);
    let s = m.session(&id, "console");
    let oldest = s["log_oldest"].as_u64().unwrap() as usize;
    assert!(oldest > 0, "{s}");
    assert!(!m.dir(&id).join("console.log.3").exists());
    assert!(m.dir(&id).join("console.log.2").exists());
    // What is still kept is exact; a replay from before it is told what was skipped.
    let got = m.logs(&id, &["--since", "0"]);
    assert!(
        got == want[oldest..],
        "{} bytes, want {}",
        got.len(),
        want.len() - oldest
    );
    let r = Raw::connect(&m, &id);
    r.send(&hello(|h| {
        h.start = Start::Offset(0);
        h.no_follow = true;
        h.flow = berth_proto::Flow::CatchUp;
    }));
    let skipped = r.recv_until(T, |f| matches!(f, Frame::Skipped { .. }));
    assert_eq!(
        Frame::decode(&skipped).unwrap(),
        Frame::Skipped {
            from: 0,
            to: oldest as u64
        }
    );
}

#[test]
fn replay_then_live_has_no_gap_and_no_duplicate() {
    let m = Mon::new();
    let mut b = script_bundle(
        "read x; i=0; while [ $i -lt 20000 ]; do echo \"n $i\"; i=$((i+1)); done; echo END; exec sleep 1000",
    );
    b.annotation("io.github.berth.monitor.ring-size", "8K");
    b.annotation("io.github.berth.monitor.log-max-size", "16K");
    b.annotation("io.github.berth.monitor.log-max-files", "1000");
    let id = m.rt.id("replay-live");
    m.start(&b, &id);
    enter(&m, &id);
    // Start following while the container is still writing.
    wait_offset(&m, &id, 20_000);
    let follower = m
        .berth(["logs", "-f", "--since", "5", &id])
        .stdout(Sink::Capture)
        .spawn();
    let mut want = b"\r\n".to_vec();
    for i in 0..20000 {
        want.extend_from_slice(format!("n {i}\r\n").as_bytes());
    }
    want.extend_from_slice(b"END\r\n");
    wait_offset(&m, &id, want.len() as u64);
    wait_until("the follower caught up", T, || {
        let c = m.session(&id, "console")["clients"][0].clone();
        (c["bytes"].as_u64()? == (want.len() - 5) as u64).then_some(())
    });
    follower.signal(rustix::process::Signal::TERM);
    let out = wait_exit(follower);
    assert!(
        out.stdout == want[5..],
        "logs -f: {} bytes, want {}",
        out.stdout.len(),
        want.len() - 5
    );
}

#[test]
fn the_cri_log_has_the_lines_without_onlcr() {
    let m = Mon::new();
    let b = seq_bundle(2000, &[]);
    let id = m.rt.id("replay-cri");
    m.start(&b, &id);
    enter(&m, &id);
    wait_offset(&m, &id, seq_output(2000).len() as u64);
    // Bulk output reaches the log files within the monitor's flush interval (20 ms).
    let text = wait_until("the CRI log's last line", T, || {
        let t = std::fs::read_to_string(m.dir(&id).join("console.cri.log")).ok()?;
        t.contains(" stdout F END\n").then_some(t)
    });
    let mut contents = Vec::new();
    let mut last_ts = String::new();
    for line in text.lines() {
        let mut it = line.splitn(4, ' ');
        let (ts, stream, tag) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        assert_eq!(ts.len(), "2026-08-19T12:00:00.123456789Z".len(), "{line:?}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{line:?}");
        assert!(ts >= last_ts.as_str(), "timestamps go backwards: {line:?}");
        last_ts = ts.to_string();
        assert_eq!(stream, "stdout");
        assert_eq!(tag, "F", "{line:?}");
        contents.push(it.next().unwrap_or("").to_string());
    }
    let mut want = vec![String::new()];
    want.extend((1..=2000).map(|i| i.to_string()));
    want.push("END".into());
    assert_eq!(contents, want);
    assert!(!text.contains('\r'));
}

#[test]
fn asciicast_records_output_and_resizes() {
    let m = Mon::new();
    let mut b = shell_bundle();
    b.annotation("io.github.berth.monitor.record", "true");
    let id = m.rt.id("replay-cast");
    m.start(&b, &id);
    m.wait_screen(&id, "/ #");
    let (pty, client) = m.attach_pty(&id, &[], 30, 100);
    expect(&pty, "/ #");
    typ(&pty, "echo cast-$((2*21))\r");
    expect(&pty, "cast-42");
    pty.set_size(40, 120);
    wait_until("the resize reached the terminal", T, || {
        (m.session(&id, "console")["size"] == "40x120").then_some(())
    });
    typ(&pty, "\x10\x11");
    assert_eq!(wait_exit(client).code(), Some(0));
    std::thread::sleep(Duration::from_millis(100));
    let text = std::fs::read_to_string(m.dir(&id).join("console.cast")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(lines[0]["version"], 2);
    assert_eq!(lines[0]["width"], 80);
    assert_eq!(lines[0]["height"], 24);
    let events = &lines[1..];
    let resizes: Vec<&str> = events
        .iter()
        .filter(|e| e[1] == "r")
        .filter_map(|e| e[2].as_str())
        .collect();
    assert_eq!(resizes, vec!["100x30", "120x40"]);
    let output: String = events
        .iter()
        .filter(|e| e[1] == "o")
        .filter_map(|e| e[2].as_str())
        .collect();
    assert!(output.contains("cast-42"), "{output:?}");
    let times: Vec<f64> = events.iter().map(|e| e[0].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}
