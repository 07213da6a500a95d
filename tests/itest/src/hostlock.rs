//! A process-wide reader/writer lock over host-wide counters (`kernel.pty.nr`).
//!
//! Everything that can allocate ptys holds a *shared* guard: a [`crate::Runtime`] from
//! [`crate::runtime`], a [`crate::Pty`], a [`crate::ConsoleReceiver`], a [`crate::Recvtty`].
//! A test that snapshots [`crate::Leftovers`] holds the *exclusive* guard (through
//! [`crate::runtime_exclusive`]), so no other test of the process allocates a pty meanwhile.
//!
//! Shared guards are re-entrant per thread (a test may hold a runtime and a pty), and inside the
//! thread that holds the exclusive guard they are no-ops. Asking for the exclusive guard while
//! the thread holds a shared one would deadlock, so it panics instead. Guards are `!Send`.

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::{Condvar, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct State {
    readers: usize,
    writer: bool,
    writers_waiting: usize,
}

static STATE: Mutex<State> = Mutex::new(State {
    readers: 0,
    writer: false,
    writers_waiting: 0,
});
static CV: Condvar = Condvar::new();

thread_local! {
    static SHARED_DEPTH: Cell<usize> = const { Cell::new(0) };
    static EXCLUSIVE: Cell<bool> = const { Cell::new(false) };
}

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Inside the exclusive thread: nothing to release.
    Noop,
    Shared,
    Exclusive,
}

/// A held guard (see the module docs).
#[derive(Debug)]
pub struct HostGuard {
    mode: Mode,
    _not_send: PhantomData<MutexGuard<'static, ()>>,
}

impl HostGuard {
    /// Whether this is the exclusive guard.
    pub fn is_exclusive(&self) -> bool {
        self.mode == Mode::Exclusive
    }
}

/// Takes a shared guard (waits while an exclusive one is held or requested).
pub fn shared() -> HostGuard {
    let mode = if EXCLUSIVE.get() {
        Mode::Noop
    } else {
        if SHARED_DEPTH.get() == 0 {
            let mut st = state();
            while st.writer || st.writers_waiting > 0 {
                st = CV.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.readers += 1;
        }
        SHARED_DEPTH.set(SHARED_DEPTH.get() + 1);
        Mode::Shared
    };
    HostGuard {
        mode,
        _not_send: PhantomData,
    }
}

/// Takes the exclusive guard (waits for every shared guard of other threads to go).
#[track_caller]
pub fn exclusive() -> HostGuard {
    assert!(
        SHARED_DEPTH.get() == 0 && !EXCLUSIVE.get(),
        "runtime_exclusive() must be taken before any runtime/pty/console of this test"
    );
    let mut st = state();
    st.writers_waiting += 1;
    while st.writer || st.readers > 0 {
        st = CV.wait(st).unwrap_or_else(|e| e.into_inner());
    }
    st.writers_waiting -= 1;
    st.writer = true;
    EXCLUSIVE.set(true);
    HostGuard {
        mode: Mode::Exclusive,
        _not_send: PhantomData,
    }
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        match self.mode {
            Mode::Noop => {}
            Mode::Shared => {
                let d = SHARED_DEPTH.get() - 1;
                SHARED_DEPTH.set(d);
                if d == 0 {
                    state().readers -= 1;
                    CV.notify_all();
                }
            }
            Mode::Exclusive => {
                EXCLUSIVE.set(false);
                state().writer = false;
                CV.notify_all();
            }
        }
    }
}
