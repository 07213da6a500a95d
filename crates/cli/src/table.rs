//! The text tables of `list` and `ps`, laid out as runc's (Go tabwriter: minimum width 12,
//! padding 3).

use std::process::Command;

use anyhow::{Context, bail};

/// Formats rows as Go's `tabwriter.NewWriter(w, 12, 1, 3, ' ', 0)` does: each cell but the
/// last padded to max(widest + 3, 12).
pub fn tabulate(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                let w = (widths[i] + 3).max(12);
                out.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// The owner column: the name of the user running berth.
pub fn owner_name() -> String {
    let uid = rustix::process::getuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// `berth list`.
pub fn list_table(states: &[berth_spec::State]) -> String {
    let owner = owner_name();
    let mut rows = vec![
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
            .map(String::from)
            .to_vec(),
    ];
    for s in states {
        rows.push(vec![
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.display().to_string(),
            s.created.clone(),
            owner.clone(),
        ]);
    }
    tabulate(&rows)
}

/// `berth ps ID [ps args]`: runs ps(1) and keeps the header and the container's processes.
pub fn ps_table(pids: &[i32], ps_args: &[String]) -> anyhow::Result<String> {
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let output = Command::new("ps").args(&args).output().context("run ps")?;
    if !output.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("couldn't find PID field in ps output")?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid: Option<i32> = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabwriter_widths() {
        let rows = vec![
            vec!["ID".to_string(), "PID".to_string(), "X".to_string()],
            vec![
                "a-very-long-id".to_string(),
                "1".to_string(),
                "y".to_string(),
            ],
        ];
        let t = tabulate(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            format!("ID{}PID{}X", " ".repeat(15), " ".repeat(9))
        );
        assert_eq!(lines[1], format!("a-very-long-id   1{}y", " ".repeat(11)));
    }
}
