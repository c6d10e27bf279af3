//! The discrete-event core: an event queue in virtual time and staff pools.
//!
//! The queue orders events by time and then by insertion sequence, so simultaneous events
//! are processed in the order they were scheduled and every run is deterministic. A
//! [`Pool`] is a unit's staff: `capacity` people, a FIFO queue of jobs, and the time-weighted
//! integrals needed for utilisation and mean queue length (Little's law checks use them).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

struct Entry<E> {
    time: f64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest event first.
        other
            .time
            .total_cmp(&self.time)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// A future-event list in virtual time.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    seq: u64,
    now: f64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    /// An empty queue at time 0.
    pub fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            seq: 0,
            now: 0.0,
        }
    }

    /// An empty queue with room for `n` pending events.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            heap: BinaryHeap::with_capacity(n),
            seq: 0,
            now: 0.0,
        }
    }

    /// Current virtual time (the time of the last popped event).
    pub fn now(&self) -> f64 {
        self.now
    }

    /// Schedules `event` at `time` (never before now: earlier times are clamped to now).
    pub fn schedule(&mut self, time: f64, event: E) {
        let time = if time < self.now { self.now } else { time };
        self.seq += 1;
        self.heap.push(Entry {
            time,
            seq: self.seq,
            event,
        });
    }

    /// Advances the clock to `time` without an event (for events kept outside the queue);
    /// never moves it backwards.
    pub fn advance_to(&mut self, time: f64) {
        if time > self.now {
            self.now = time;
        }
    }

    /// Pops the next event and advances the clock to it.
    pub fn pop(&mut self) -> Option<(f64, E)> {
        let e = self.heap.pop()?;
        self.now = e.time;
        Some((e.time, e.event))
    }

    /// Time of the next event, if any.
    pub fn peek_time(&self) -> Option<f64> {
        self.heap.peek().map(|e| e.time)
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// A job waiting for a person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Job<T> {
    /// Caller's payload (e.g. the case and the stage).
    pub payload: T,
    /// Work content in hours.
    pub work: f64,
    /// When the job was requested.
    pub requested_at: f64,
}

/// A unit's staff.
#[derive(Debug, Clone)]
pub struct Pool<T> {
    capacity: u32,
    busy: u32,
    queue: VecDeque<Job<T>>,
    last_change: f64,
    queue_area: f64,
    busy_area: f64,
    max_queue: usize,
    /// Work hours started (for utilisation against working hours).
    pub work_started: f64,
    /// Jobs requested.
    pub requested: u64,
    /// Jobs started.
    pub started: u64,
    /// Jobs finished.
    pub finished: u64,
}

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Seized<T> {
    /// A person took the job now.
    Started(Job<T>),
    /// All people are busy; the job waits in the queue.
    Queued,
}

impl<T: Copy> Pool<T> {
    /// A pool of `capacity` people.
    pub fn new(capacity: u32) -> Self {
        Self {
            capacity,
            busy: 0,
            queue: VecDeque::new(),
            last_change: 0.0,
            queue_area: 0.0,
            busy_area: 0.0,
            max_queue: 0,
            work_started: 0.0,
            requested: 0,
            started: 0,
            finished: 0,
        }
    }

    fn advance(&mut self, now: f64) {
        let dt = now - self.last_change;
        if dt > 0.0 {
            self.queue_area += dt * self.queue.len() as f64;
            self.busy_area += dt * self.busy as f64;
            self.last_change = now;
        }
    }

    /// Requests a person for `job`.
    pub fn request(&mut self, now: f64, job: Job<T>) -> Seized<T> {
        self.advance(now);
        self.requested += 1;
        if self.busy < self.capacity {
            self.busy += 1;
            self.started += 1;
            self.work_started += job.work;
            Seized::Started(job)
        } else {
            self.queue.push_back(job);
            self.max_queue = self.max_queue.max(self.queue.len());
            Seized::Queued
        }
    }

    /// A person finished a job; returns the next queued job they take, if any.
    pub fn release(&mut self, now: f64) -> Option<Job<T>> {
        self.advance(now);
        self.finished += 1;
        match self.queue.pop_front() {
            Some(job) => {
                self.started += 1;
                self.work_started += job.work;
                Some(job)
            }
            None => {
                self.busy = self.busy.saturating_sub(1);
                None
            }
        }
    }

    /// Closes the time integrals at `now`.
    pub fn close(&mut self, now: f64) {
        self.advance(now);
    }

    /// People in this pool.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }
    /// People busy now.
    pub fn busy(&self) -> u32 {
        self.busy
    }
    /// Jobs waiting now.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }
    /// Longest queue seen.
    pub fn max_queue(&self) -> usize {
        self.max_queue
    }
    /// Time integral of the queue length.
    pub fn queue_area(&self) -> f64 {
        self.queue_area
    }
    /// Time integral of busy people (virtual time, including nights a job spans).
    pub fn busy_area(&self) -> f64 {
        self.busy_area
    }
    /// Resets the integrals and counters (end of warm-up), keeping the current state.
    pub fn reset_stats(&mut self, now: f64) {
        self.advance(now);
        self.queue_area = 0.0;
        self.busy_area = 0.0;
        self.max_queue = self.queue.len();
        self.work_started = 0.0;
        self.requested = 0;
        self.started = 0;
        self.finished = 0;
    }
}

/// Result of [`run_mmc`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MmcResult {
    /// Customers whose statistics were counted (after warm-up).
    pub customers: u64,
    /// Mean wait in queue.
    pub mean_wait: f64,
    /// Mean time in system.
    pub mean_system_time: f64,
    /// Time-weighted mean queue length over the counted period.
    pub mean_queue_len: f64,
    /// Arrival rate observed in the counted period.
    pub observed_lambda: f64,
    /// Busy people / capacity over the counted period.
    pub utilisation: f64,
}

/// The bare queueing core on an M/M/c queue: the same [`EventQueue`] and [`Pool`] the
/// workflow model uses, without cases or a calendar. Used by the SimPy peer benchmark and
/// as a cross-check of the full model.
pub fn run_mmc(lambda: f64, mu: f64, c: u32, customers: u64, warmup: u64, seed: u64) -> MmcResult {
    use rand_distr::{Distribution, Exp};
    let streams = crate::rng::Streams::new(seed);
    let mut arrivals_rng = streams.stream("mmc/arrivals", 0);
    let mut service_rng = streams.stream("mmc/service", 0);
    let inter = Exp::new(lambda).unwrap_or_else(|_| Exp::new(1.0).expect("valid"));
    let serv = Exp::new(mu).unwrap_or_else(|_| Exp::new(1.0).expect("valid"));
    #[derive(Clone, Copy)]
    enum Ev {
        Arrive,
        Depart,
    }
    let mut q: EventQueue<Ev> = EventQueue::with_capacity(c as usize + 2);
    let mut pool: Pool<(u64, f64)> = Pool::new(c);
    let total = customers + warmup;
    let mut arrived = 0u64;
    let mut wait_sum = 0.0;
    let mut sys_sum = 0.0;
    let mut counted = 0u64;
    let mut stats_start = 0.0;
    let mut counted_arrivals = 0u64;
    q.schedule(inter.sample(&mut arrivals_rng), Ev::Arrive);
    while let Some((now, ev)) = q.pop() {
        match ev {
            Ev::Arrive => {
                arrived += 1;
                if arrived == warmup + 1 {
                    pool.reset_stats(now);
                    stats_start = now;
                }
                if arrived > warmup {
                    counted_arrivals += 1;
                }
                let work = serv.sample(&mut service_rng);
                if let Seized::Started(job) = pool.request(
                    now,
                    Job {
                        payload: (arrived, now),
                        work,
                        requested_at: now,
                    },
                ) {
                    q.schedule(now + job.work, Ev::Depart);
                    if arrived > warmup {
                        counted += 1;
                        sys_sum += job.work;
                    }
                }
                if arrived < total {
                    q.schedule(now + inter.sample(&mut arrivals_rng), Ev::Arrive);
                }
            }
            Ev::Depart => {
                if let Some(job) = pool.release(now) {
                    let (id, at) = job.payload;
                    q.schedule(now + job.work, Ev::Depart);
                    if id > warmup {
                        counted += 1;
                        wait_sum += now - at;
                        sys_sum += now - at + job.work;
                    }
                }
                if arrived >= total && pool.queue_len() == 0 && counted >= customers {
                    pool.close(now);
                    let span = (now - stats_start).max(f64::MIN_POSITIVE);
                    return MmcResult {
                        customers: counted,
                        mean_wait: wait_sum / counted.max(1) as f64,
                        mean_system_time: sys_sum / counted.max(1) as f64,
                        mean_queue_len: pool.queue_area() / span,
                        observed_lambda: counted_arrivals as f64 / span,
                        utilisation: pool.busy_area() / span / c as f64,
                    };
                }
            }
        }
    }
    let now = q.now();
    pool.close(now);
    let span = (now - stats_start).max(f64::MIN_POSITIVE);
    MmcResult {
        customers: counted,
        mean_wait: wait_sum / counted.max(1) as f64,
        mean_system_time: sys_sum / counted.max(1) as f64,
        mean_queue_len: pool.queue_area() / span,
        observed_lambda: counted_arrivals as f64 / span,
        utilisation: pool.busy_area() / span / c as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simultaneous_events_pop_in_scheduling_order() {
        let mut q = EventQueue::new();
        q.schedule(2.0, "b1");
        q.schedule(1.0, "a");
        q.schedule(2.0, "b2");
        assert_eq!(q.pop(), Some((1.0, "a")));
        assert_eq!(q.pop(), Some((2.0, "b1")));
        assert_eq!(q.pop(), Some((2.0, "b2")));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn a_full_pool_queues_fifo() {
        let mut p: Pool<u32> = Pool::new(1);
        assert!(matches!(
            p.request(
                0.0,
                Job {
                    payload: 1,
                    work: 1.0,
                    requested_at: 0.0
                }
            ),
            Seized::Started(_)
        ));
        assert_eq!(
            p.request(
                0.5,
                Job {
                    payload: 2,
                    work: 1.0,
                    requested_at: 0.5
                }
            ),
            Seized::Queued
        );
        assert_eq!(
            p.request(
                0.6,
                Job {
                    payload: 3,
                    work: 1.0,
                    requested_at: 0.6
                }
            ),
            Seized::Queued
        );
        assert_eq!(p.release(1.0).map(|j| j.payload), Some(2));
        assert_eq!(p.release(2.0).map(|j| j.payload), Some(3));
        assert_eq!(p.release(3.0), None);
        assert_eq!(p.busy(), 0);
        // Queue: 1 job over [0.5, 0.6), 2 over [0.6, 1.0), 1 over [1.0, 2.0).
        assert!((p.queue_area() - (0.1 + 0.8 + 1.0)).abs() < 1e-9);
    }
}
