//! `--bwlimit RATE`: a token bucket on a writer, and the rate parser.
//!
//! The bucket fills at `rate` bytes per second up to a burst of
//! `rate / 8` bytes (at least 4 KiB), so over any window of about a
//! second the bytes written stay within `rate` x window + burst; a write
//! waits (sleeps) until the bucket holds its bytes, larger writes go in
//! burst-sized pieces. Time comes from a [`Clock`], which tests replace.

use std::io::{self, Write};
use std::time::{Duration, Instant};

/// The smallest burst, in bytes.
const MIN_BURST: u64 = 4096;

/// Where [`RateLimited`] gets the time and how it waits.
pub trait Clock {
    /// Time elapsed since some fixed point.
    fn now(&self) -> Duration;
    /// Waits for `d`.
    fn sleep(&self, d: Duration);
}

/// The real, monotonic clock.
#[derive(Debug)]
pub struct RealClock(Instant);

impl Default for RealClock {
    fn default() -> Self {
        RealClock(Instant::now())
    }
}

impl Clock for RealClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A writer that lets at most `rate` bytes per second through.
pub struct RateLimited<W: Write, C: Clock = RealClock> {
    inner: W,
    clock: C,
    rate: u64,
    burst: u64,
    /// Bytes available now (as of `at`).
    tokens: f64,
    at: Duration,
}

impl<W: Write> RateLimited<W> {
    /// `inner` limited to `rate` bytes per second (at least 1).
    pub fn new(inner: W, rate: u64) -> Self {
        Self::with_clock(inner, rate, RealClock::default())
    }
}

impl<W: Write, C: Clock> RateLimited<W, C> {
    /// The same with another clock.
    pub fn with_clock(inner: W, rate: u64, clock: C) -> Self {
        let rate = rate.max(1);
        let burst = (rate / 8).max(MIN_BURST);
        let at = clock.now();
        RateLimited {
            inner,
            clock,
            rate,
            burst,
            tokens: burst as f64,
            at,
        }
    }

    /// The largest burst, in bytes.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The inner writer, mutably (writes to it are not limited).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Refills the bucket for the time elapsed since the last refill.
    fn refill(&mut self) {
        let now = self.clock.now();
        let dt = now.saturating_sub(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + dt * self.rate as f64).min(self.burst as f64);
    }

    /// Waits until `n` bytes (at most a burst) may go, and takes them.
    fn take(&mut self, n: u64) {
        self.refill();
        // Half a byte of slack: the clock's nanoseconds round.
        while self.tokens + 0.5 < n as f64 {
            let missing = n as f64 - self.tokens;
            let wait = Duration::from_secs_f64(missing / self.rate as f64);
            self.clock.sleep(wait.max(Duration::from_micros(1)));
            self.refill();
        }
        self.tokens -= n as f64;
    }
}

impl<W: Write, C: Clock> Write for RateLimited<W, C> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = buf.len().min(self.burst as usize);
        self.take(n as u64);
        let done = self.inner.write(&buf[..n])?;
        // Bytes not taken by the inner writer are given back.
        self.tokens += (n - done) as f64;
        Ok(done)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Why a `--bwlimit` value is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad rate {0:?}: expected a number with an optional suffix (B, K, M, G, KB, MB, GB, KiB, MiB, GiB), e.g. 5M")]
pub struct RateError(pub String);

/// Parses a `--bwlimit` value as rsync does, into bytes per second:
/// a number (a decimal fraction is allowed) and an optional suffix.
/// Without a suffix the unit is 1024 bytes (rsync's default for
/// `--bwlimit`: `500` is 500 KiB/s). `B` is bytes; `K`, `M`, `G` (also
/// `KiB`, `MiB`, `GiB`) are powers of 1024; `KB`, `MB`, `GB` powers of
/// 1000; case does not matter. `0` means no limit ([`None`]); a rate
/// that rounds to less than 512 bytes per second is refused, as rsync
/// does.
pub fn parse_rate(s: &str) -> Result<Option<u64>, RateError> {
    let bad = || RateError(s.to_string());
    let rate = crate::units::parse_quantity(s, 1 << 10).ok_or_else(bad)?;
    if rate == 0.0 {
        return Ok(None);
    }
    if rate > (1u64 << 50) as f64 || rate.round() < 512.0 {
        return Err(bad());
    }
    Ok(Some(rate.round() as u64))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// A clock that moves only when slept on.
    #[derive(Default)]
    struct FakeClock(Cell<Duration>);

    impl Clock for &FakeClock {
        fn now(&self) -> Duration {
            self.0.get()
        }
        fn sleep(&self, d: Duration) {
            self.0.set(self.0.get() + d);
        }
    }

    #[test]
    fn rates_parse_as_rsync_reads_them() {
        let ok = [
            ("5M", 5 << 20),
            ("500K", 500 << 10),
            ("500k", 500 << 10),
            ("1G", 1 << 30),
            ("100", 100 << 10),
            ("1048576B", 1 << 20),
            ("1.5M", 3 << 19),
            ("2MB", 2_000_000),
            ("3KiB", 3072),
            ("1gb", 1_000_000_000),
        ];
        for (s, want) in ok {
            assert_eq!(parse_rate(s), Ok(Some(want)), "{s}");
        }
        assert_eq!(parse_rate("0"), Ok(None));
        assert_eq!(parse_rate("0M"), Ok(None));
        for s in [
            "",
            "M",
            "5X",
            "-5M",
            "1.2.3K",
            ".5M",
            "5.M",
            "5 M",
            "100B",
            "1e9",
            "99999999999G",
        ] {
            assert!(parse_rate(s).is_err(), "{s:?} accepted");
        }
    }

    /// Writes `total` bytes in writes of `chunk` with the fake clock;
    /// returns (time taken, the most bytes written within any second).
    fn run(rate: u64, total: usize, chunk: usize) -> (f64, u64) {
        let clock = FakeClock::default();
        let mut w = RateLimited::with_clock(Vec::new(), rate, &clock);
        let mut log: Vec<(f64, u64)> = Vec::new();
        let data = vec![7u8; chunk];
        let mut sent = 0;
        while sent < total {
            let n = w.write(&data[..chunk.min(total - sent)]).unwrap();
            assert!(n > 0);
            sent += n;
            log.push((clock.0.get().as_secs_f64(), sent as u64));
        }
        assert_eq!(w.get_ref().len(), total);
        // Two pointers: log[j] is the last write less than 1 s after log[i].
        let (mut worst, mut j) = (0, 0);
        for (i, &(t0, _)) in log.iter().enumerate() {
            let before = if i == 0 { 0 } else { log[i - 1].1 };
            j = j.max(i);
            while j + 1 < log.len() && log[j + 1].0 < t0 + 1.0 {
                j += 1;
            }
            worst = worst.max(log[j].1 - before);
        }
        (clock.0.get().as_secs_f64(), worst)
    }

    #[test]
    fn the_average_rate_holds_whatever_the_write_size() {
        let rate = 5 << 20;
        let burst = (rate / 8) as f64;
        for chunk in [100, 4096, 65536, 1 << 20, 8 << 20] {
            let (secs, worst) = run(rate, 20 << 20, chunk);
            let ideal = (20 << 20) as f64 / rate as f64;
            assert!(
                secs >= ideal - burst / rate as f64 - 1e-6,
                "chunk {chunk}: {secs} s"
            );
            assert!(secs <= ideal + 0.01, "chunk {chunk}: {secs} s");
            assert!(
                worst as f64 <= rate as f64 + burst + chunk as f64,
                "chunk {chunk}: {worst} bytes in 1 s"
            );
        }
    }

    #[test]
    fn an_idle_writer_saves_at_most_one_burst() {
        let clock = FakeClock::default();
        let rate = 1 << 20;
        let mut w = RateLimited::with_clock(Vec::new(), rate, &clock);
        (&clock).sleep(Duration::from_secs(100));
        let start = clock.0.get();
        let data = vec![0u8; 2 << 20];
        w.write_all(&data).unwrap();
        let took = (clock.0.get() - start).as_secs_f64();
        let expect = ((2 << 20) - w.burst()) as f64 / rate as f64;
        assert!((took - expect).abs() < 0.01, "{took} s, expected {expect}");
    }
}
