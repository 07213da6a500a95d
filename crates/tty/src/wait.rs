//! `epoll_wait` that polls for a short, self-tuning window before it sleeps, as KVM's halt
//! polling does for an idle vCPU.
//!
//! A relay that sleeps in `epoll_wait` pays a wakeup for every event: a context switch and, on an
//! idle CPU (a VM's above all), an exit from the idle state. When events come close together (a
//! program answering its terminal byte by byte, a paste, a terminal query and its reply) that
//! wakeup is most of the latency a relay adds. [`PollingWait`] therefore first checks the epoll
//! set without sleeping, yielding the CPU between checks, for a window that follows the recent
//! gaps between events:
//!
//! - a sleep that ended within [`PollingWait::max`] of its start (counting the poll before it)
//!   means an event came soon after the window closed: the window grows (from 10 us, doubling, up
//!   to the maximum);
//! - a sleep longer than the maximum means events are far apart: the window drops to zero, so an
//!   idle or slow container costs no CPU at all;
//! - an event found while polling keeps the window as it is.
//!
//! So a human typing never makes the relay spin for more than one short window per key, while a
//! stream of round trips is served without a wakeup each. The cost is CPU time while events come
//! less than the maximum apart: at most that window per event, spent yielding to anything else
//! runnable on the CPU. `BERTH_POLL_US` sets the maximum in microseconds (default
//! [`DEFAULT_MAX_US`]; `0` turns polling off).

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use rustix::event::epoll::{self, Event, EventData, EventFlags};
use rustix::io::Errno;
use rustix::time::Timespec;

/// Default upper bound of the polling window, in microseconds.
pub const DEFAULT_MAX_US: u64 = 100;

/// The environment variable that sets the upper bound of the window in microseconds.
pub const MAX_ENV: &str = "BERTH_POLL_US";

/// Where a window that grows from zero starts.
const GROW_START: Duration = Duration::from_micros(10);

/// How many events one wait returns at most.
pub const EVENTS: usize = 32;

/// An `epoll_wait` with adaptive polling before it sleeps; see the module documentation.
pub struct PollingWait {
    window: Duration,
    max: Duration,
    events: [Event; EVENTS],
}

impl PollingWait {
    /// A waiter whose window grows up to `max` (`Duration::ZERO`: never poll).
    pub fn new(max: Duration) -> PollingWait {
        let empty = Event {
            flags: EventFlags::empty(),
            data: EventData::new_u64(0),
        };
        PollingWait {
            window: Duration::ZERO,
            max,
            events: [empty; EVENTS],
        }
    }

    /// A waiter with the maximum from `BERTH_POLL_US`, or [`DEFAULT_MAX_US`] when it is unset or
    /// not a number.
    pub fn from_env() -> PollingWait {
        let us = std::env::var(MAX_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(DEFAULT_MAX_US);
        PollingWait::new(Duration::from_micros(us))
    }

    /// The upper bound of the window.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The current window (zero while events are far apart).
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Waits for events on `epoll` like `epoll_wait(epoll, …, timeout)` (`None`: no limit) and
    /// returns them. A zero timeout only checks, with no polling and no change to the window.
    pub fn wait(
        &mut self,
        epoll: BorrowedFd<'_>,
        timeout: Option<&Timespec>,
    ) -> Result<&[Event], Errno> {
        let limit = timeout.map(|t| {
            Duration::from_secs(t.tv_sec.max(0) as u64)
                + Duration::from_nanos(t.tv_nsec.max(0) as u64)
        });
        if limit == Some(Duration::ZERO) {
            let n = epoll::wait(epoll, &mut self.events[..], Some(&ZERO))?;
            return Ok(&self.events[..n]);
        }
        let start = Instant::now();
        let window = match limit {
            Some(l) => self.window.min(l),
            None => self.window,
        };
        if !window.is_zero() {
            loop {
                let n = epoll::wait(epoll, &mut self.events[..], Some(&ZERO))?;
                if n > 0 {
                    return Ok(&self.events[..n]);
                }
                if start.elapsed() >= window {
                    break;
                }
                rustix::thread::sched_yield();
            }
        }
        let rest = limit.map(|l| {
            let left = l.saturating_sub(start.elapsed());
            Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: left.subsec_nanos() as i64,
            }
        });
        let block = Instant::now();
        let n = epoll::wait(epoll, &mut self.events[..], rest.as_ref())?;
        self.adapt(block.elapsed() + window);
        Ok(&self.events[..n])
    }

    /// Grows or drops the window after a wait that slept for `slept` after polling for the
    /// window. The window counts as polled even when the yields in it let others run longer: that
    /// time is theirs, not a gap between this loop's events.
    fn adapt(&mut self, slept: Duration) {
        if self.max.is_zero() {
            return;
        }
        self.window = if slept > self.max {
            Duration::ZERO
        } else if self.window.is_zero() {
            GROW_START.min(self.max)
        } else {
            (self.window * 2).min(self.max)
        };
    }
}

const ZERO: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::epoll::CreateFlags;
    use rustix::fd::AsFd;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn the_window_grows_on_short_sleeps_and_drops_on_a_long_one() {
        let mut w = PollingWait::new(us(100));
        assert_eq!(w.window(), Duration::ZERO);
        let grown: Vec<u64> = (0..5)
            .map(|_| {
                w.adapt(us(30));
                w.window().as_micros() as u64
            })
            .collect();
        assert_eq!(grown, [10, 20, 40, 80, 100]);
        w.adapt(us(101));
        assert_eq!(w.window(), Duration::ZERO);
    }

    #[test]
    fn a_zero_maximum_never_polls() {
        let mut w = PollingWait::new(Duration::ZERO);
        w.adapt(us(1));
        assert_eq!(w.window(), Duration::ZERO);
    }

    #[test]
    fn events_are_returned_and_a_timeout_without_events_drops_the_window() {
        let ep = epoll::create(CreateFlags::CLOEXEC).unwrap();
        let (r, wr) = rustix::pipe::pipe().unwrap();
        epoll::add(&ep, &r, EventData::new_u64(7), EventFlags::IN).unwrap();
        let mut w = PollingWait::new(us(100_000));
        rustix::io::write(&wr, b"x").unwrap();
        let got: Vec<u64> = w
            .wait(ep.as_fd(), None)
            .unwrap()
            .iter()
            .map(|e| e.data.u64())
            .collect();
        assert_eq!(got, [7]);
        // The write came before the wait: a short sleep, so the window opened.
        assert_eq!(w.window(), GROW_START);
        let mut buf = [0u8; 1];
        rustix::io::read(&r, &mut buf).unwrap();
        // Nothing comes: the wait polls, then sleeps until its timeout (200 ms, over the
        // maximum of 100 ms), and the window drops.
        let t = Timespec {
            tv_sec: 0,
            tv_nsec: 200_000_000,
        };
        let start = Instant::now();
        assert!(w.wait(ep.as_fd(), Some(&t)).unwrap().is_empty());
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert_eq!(w.window(), Duration::ZERO);
    }
}
