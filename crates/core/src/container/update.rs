//! `update` and the data behind `events`: a running container's cgroup, changed and read.
//!
//! `update` writes the resources it is given through the container's [`CgroupManager`]
//! (the cgroups crate validates first, so a refused value names its field and changes nothing
//! it had not yet reached) and then records them in the state file's copy of the config, as
//! runc keeps its state's config in step. Fields left unset are left as they are. A stopped
//! container cannot be updated (runc: "container not running").
//!
//! `events` reads [`Stats`] and the cgroup's OOM-kill counter; the command line turns them
//! into runc's event stream. Each read opens (and locks) the state directory only for the
//! moment of the read, so other commands are never held up by a long `events`.
//!
//! [`CgroupManager`]: berth_cgroups::CgroupManager

use berth_cgroups::Stats;
use berth_spec::{Resources, Status};

use crate::error::{Error, Result};
use crate::store::Store;

/// Copies every field set in `from` into `into`.
fn merge(into: &mut Resources, from: &Resources) {
    macro_rules! take {
        ($dst:expr, $src:expr, $($f:ident),*) => {
            $( if $src.$f.is_some() { $dst.$f = $src.$f.clone(); } )*
        };
    }
    if let Some(m) = &from.memory {
        let d = into.memory.get_or_insert_with(Default::default);
        take!(
            d,
            m,
            limit,
            reservation,
            swap,
            kernel,
            kernel_tcp,
            swappiness,
            disable_oom_killer,
            use_hierarchy,
            check_before_update
        );
    }
    if let Some(c) = &from.cpu {
        let d = into.cpu.get_or_insert_with(Default::default);
        take!(
            d,
            c,
            shares,
            quota,
            burst,
            period,
            realtime_runtime,
            realtime_period,
            cpus,
            mems,
            idle
        );
    }
    if let Some(p) = from.pids {
        into.pids = Some(p);
    }
    if let Some(b) = &from.block_io {
        let d = into.block_io.get_or_insert_with(Default::default);
        take!(d, b, weight, leaf_weight);
    }
    for (k, v) in &from.unified {
        into.unified.insert(k.clone(), v.clone());
    }
}

/// `berth update ID`: applies `resources` to the container's cgroup and records them.
pub fn update(store: &Store, id: &str, resources: &Resources) -> Result<()> {
    let dir = store.open(id)?;
    let mut record = dir.load()?;
    if super::status(&dir, &record) == Status::Stopped {
        return Err(Error::NotRunning(id.to_string()));
    }
    let cg = record
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::State(format!("container {id} has no cgroup to update")))?;
    cg.update(resources)?;
    let linux = record.spec.linux.get_or_insert_with(Default::default);
    merge(
        linux.resources.get_or_insert_with(Default::default),
        resources,
    );
    dir.save(&record)
}

/// What `events` reads at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The container's status.
    pub status: Status,
    /// Its cgroup's statistics (`None` once it is stopped).
    pub stats: Option<Stats>,
    /// How many processes the kernel's OOM killer has killed in its cgroup so far (`None`
    /// when the memory controller does not say).
    pub oom_kills: Option<u64>,
}

fn oom_kills(cg: &berth_cgroups::CgroupManager) -> Option<u64> {
    // v1: memory.oom_control has "oom_kill N" (Linux 4.13+); v2: memory.events.
    let (file, dir) = match cg.v1_dirs().get("memory") {
        Some(d) => ("memory.oom_control", d.as_path()),
        None => ("memory.events", cg.unified_dir()?),
    };
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == "oom_kill").then(|| v.trim().parse().ok()).flatten()
    })
}

/// A note for an init that died during setup: whether the memory cgroup's OOM killer did it,
/// with the limit from the config (a limit too small to start is found out that way).
pub(crate) fn oom_note(
    cg: Option<&berth_cgroups::CgroupManager>,
    spec: &berth_spec::Spec,
) -> String {
    if cg.and_then(oom_kills).unwrap_or(0) == 0 {
        return String::new();
    }
    let limit = spec
        .linux
        .as_ref()
        .and_then(|l| l.resources.as_ref())
        .and_then(|r| r.memory.as_ref())
        .and_then(|m| m.limit);
    match limit {
        Some(l) => {
            format!(": out of memory in its cgroup (linux.resources.memory.limit is {l} bytes)")
        }
        None => ": out of memory in its cgroup".to_string(),
    }
}

/// One reading for `events`, with the statistics when `with_stats` is set. A container that is
/// already stopped is an error (runc: "container with id ID is not running") only when
/// `must_run` is set; otherwise it gives a sample without stats, which ends the stream.
pub fn sample(store: &Store, id: &str, must_run: bool, with_stats: bool) -> Result<Sample> {
    let dir = match store.open(id) {
        Ok(d) => d,
        // Deleted while a stream watched it: it stopped.
        Err(Error::NotExist(_)) if !must_run => {
            return Ok(Sample {
                status: Status::Stopped,
                stats: None,
                oom_kills: None,
            });
        }
        Err(e) => return Err(e),
    };
    let record = dir.load()?;
    let status = super::status(&dir, &record);
    if status == Status::Stopped {
        if must_run {
            return Err(Error::State(format!(
                "container with id {id} is not running"
            )));
        }
        return Ok(Sample {
            status,
            stats: None,
            oom_kills: None,
        });
    }
    let cg = record
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::State(format!("container {id} has no cgroup to read")))?;
    Ok(Sample {
        status,
        stats: if with_stats { Some(cg.stats()?) } else { None },
        oom_kills: oom_kills(cg),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_spec::{Cpu, Memory, Pids};

    #[test]
    fn merge_keeps_what_is_not_given() {
        let mut base = Resources {
            memory: Some(Memory {
                limit: Some(100),
                swap: Some(200),
                ..Memory::default()
            }),
            pids: Some(Pids { limit: 10 }),
            ..Resources::default()
        };
        let update = Resources {
            memory: Some(Memory {
                limit: Some(150),
                ..Memory::default()
            }),
            cpu: Some(Cpu {
                quota: Some(5000),
                ..Cpu::default()
            }),
            ..Resources::default()
        };
        merge(&mut base, &update);
        let m = base.memory.as_ref().expect("memory");
        assert_eq!((m.limit, m.swap), (Some(150), Some(200)));
        assert_eq!(base.pids, Some(Pids { limit: 10 }));
        assert_eq!(base.cpu.as_ref().and_then(|c| c.quota), Some(5000));
    }
}
