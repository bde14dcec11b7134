//! Password hashing with argon2id, off the async threads and with bounded parallelism.
//!
//! Hashing is deliberately slow (tens of milliseconds, megabytes of memory). Running it on a
//! tokio worker would stall every chat message behind a login; running unbounded would let a
//! login storm take all cores and memory. So each hash runs on one of `parallelism` threads of
//! its own (started on demand, ended when idle so that their memory goes back to the system),
//! holding a semaphore permit.
//!
//! Those threads run at a lower CPU priority (nice 10) than the rest of the process: on a busy
//! core, chat traffic goes first and logins take what is left, instead of both getting half. The
//! benchmark's login storm (200 logins while chat ran at half the consumer's maximum, one core)
//! had chat p99 at 7.3 s without this.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::{Argon2, Params, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::{OnceCell, Semaphore};

use crate::error::{Error, ErrorKind, Result};

/// The prefix of every argon2 PHC string; anything else in the `password` column is a
/// plain-text password from the tutorial's SQL.
const PHC_PREFIX: &str = "$argon2";

/// Whether a password matched a stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// It matched. `upgraded` holds a fresh argon2id hash when the stored value was plain text
    /// and must be replaced.
    Valid {
        /// The hash to store instead of the plain text.
        upgraded: Option<String>,
    },
    /// It did not match.
    Invalid,
}

/// Hashes and checks passwords.
#[derive(Debug, Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    pool: Arc<Pool>,
    /// A hash of nothing in particular, checked when a user does not exist so that an unknown
    /// name costs as much time as a wrong password.
    dummy: Arc<OnceCell<String>>,
}

impl Hasher {
    /// argon2id with the library's recommended cost; at most `parallelism` hashes at once.
    pub fn new(parallelism: usize) -> Self {
        Self::from_params(Params::DEFAULT, parallelism)
    }

    /// argon2id with a chosen cost: `memory_kib` KiB, `iterations` passes, one lane.
    ///
    /// Lower costs are for tests; hashes record their own cost, so any hasher checks them.
    pub fn with_cost(memory_kib: u32, iterations: u32, parallelism: usize) -> Result<Self> {
        let params = Params::new(memory_kib, iterations, 1, None).map_err(|err| {
            Error::new(ErrorKind::InvalidInput, "invalid argon2 cost").with_source(err)
        })?;
        Ok(Self::from_params(params, parallelism))
    }

    fn from_params(params: Params, parallelism: usize) -> Self {
        Self {
            params,
            permits: Arc::new(Semaphore::new(parallelism.max(1))),
            pool: Arc::new(Pool::start(parallelism.max(1), IDLE_THREAD)),
            dummy: Arc::new(OnceCell::new()),
        }
    }

    /// A new argon2id PHC string for `password`.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.blocking(move || hash_with(&params, &password)).await
    }

    /// Checks `password` against a stored value (PHC string or legacy plain text).
    pub async fn check(&self, password: &str, stored: &str) -> Result<Check> {
        let params = self.params.clone();
        let password = password.to_owned();
        let stored = stored.to_owned();
        self.blocking(move || check_with(&params, &password, &stored))
            .await
    }

    /// Spends the time of a real check, for a user that does not exist; always invalid.
    pub async fn check_absent(&self, password: &str) -> Result<Check> {
        let dummy = self
            .dummy
            .get_or_try_init(|| self.hash("not a real password"))
            .await?
            .clone();
        self.check(password, &dummy).await?;
        Ok(Check::Invalid)
    }

    /// Takes every hashing slot until the guard drops, so tests can hold logins mid-way.
    #[cfg(test)]
    pub(crate) async fn hold_all(&self) -> tokio::sync::OwnedSemaphorePermit {
        let all = u32::try_from(self.permits.available_permits()).unwrap();
        Arc::clone(&self.permits)
            .acquire_many_owned(all)
            .await
            .unwrap()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(|err| {
            Error::new(ErrorKind::Password, "password hashing is shut down").with_source(err)
        })?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pool.run(Box::new(move || {
            let started = std::time::Instant::now();
            let done = work();
            metrics::histogram!(crate::telemetry::names::PASSWORD_HASH_SECONDS)
                .record(started.elapsed().as_secs_f64());
            let _ = tx.send(done);
        }))?;
        rx.await.map_err(|err| {
            Error::new(ErrorKind::Password, "password hashing thread failed").with_source(err)
        })?
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// How long a hashing thread waits for another job before it ends. Longer than the allocator's
/// purge delay (mimalloc: 1 s): a thread that ends returns the memory of the hashes it ran
/// (an argon2 block is 19 MiB by default) once that delay has passed, and an idle process
/// would otherwise keep one block per thread that ever hashed.
const IDLE_THREAD: Duration = Duration::from_secs(2);

/// The hashing threads: started when jobs come and none is free, at most `max` of them, each
/// ending after [`IDLE_THREAD`] without a job; all end when the last [`Hasher`] clone drops
/// the pool.
#[derive(Debug)]
struct Pool {
    jobs: mpsc::Sender<Job>,
    shared: Arc<PoolShared>,
}

#[derive(Debug)]
struct PoolShared {
    rx: Mutex<mpsc::Receiver<Job>>,
    max: usize,
    idle_after: Duration,
    /// Threads running, and those of them waiting for a job.
    live: AtomicUsize,
    waiting: AtomicUsize,
}

/// `thread-priority`'s cross-platform value for nice 10 on Linux (0..=99 maps onto nice 19..=-20).
const LOWER_PRIORITY: u8 = 22;

impl Pool {
    fn start(max: usize, idle_after: Duration) -> Self {
        let (jobs, rx) = mpsc::channel::<Job>();
        let shared = Arc::new(PoolShared {
            rx: Mutex::new(rx),
            max: max.max(1),
            idle_after,
            live: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
        });
        Self { jobs, shared }
    }

    fn run(&self, job: Job) -> Result<()> {
        self.jobs
            .send(job)
            .map_err(|_| Error::new(ErrorKind::Password, "password hashing threads are gone"))?;
        // A thread that is just ending still takes the job (see `work`); at worst one more
        // thread starts than needed, and it ends when idle.
        let shared = &self.shared;
        if shared.waiting.load(Ordering::Acquire) == 0 {
            let live = shared.live.fetch_add(1, Ordering::AcqRel);
            if live >= shared.max {
                shared.live.fetch_sub(1, Ordering::AcqRel);
            } else {
                let worker = Arc::clone(shared);
                let spawned = std::thread::Builder::new()
                    .name(format!("argon2-{live}"))
                    .spawn(move || work(&worker));
                if let Err(err) = spawned {
                    shared.live.fetch_sub(1, Ordering::AcqRel);
                    tracing::error!(error = %err, "cannot start a password hashing thread");
                    if live == 0 {
                        return Err(Error::new(
                            ErrorKind::Password,
                            "cannot start a password hashing thread",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Threads running now.
    #[cfg(test)]
    fn live(&self) -> usize {
        self.shared.live.load(Ordering::Acquire)
    }
}

/// One hashing thread: jobs until none comes for a while or the pool is gone.
fn work(shared: &PoolShared) {
    lower_priority();
    loop {
        // The lock is held only while waiting for the next job.
        let job = {
            let Ok(rx) = shared.rx.lock() else {
                shared.live.fetch_sub(1, Ordering::AcqRel);
                return;
            };
            shared.waiting.fetch_add(1, Ordering::AcqRel);
            let job = rx.recv_timeout(shared.idle_after);
            shared.waiting.fetch_sub(1, Ordering::AcqRel);
            match job {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    shared.live.fetch_sub(1, Ordering::AcqRel);
                    // A job sent while this thread was timing out saw it waiting and started
                    // none: take it after all.
                    match rx.try_recv() {
                        Ok(job) => {
                            shared.live.fetch_add(1, Ordering::AcqRel);
                            job
                        }
                        Err(_) => return,
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    shared.live.fetch_sub(1, Ordering::AcqRel);
                    return;
                }
            }
        };
        // A panic drops the job's answer (its caller gets an error), not the thread.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// Lowers the calling thread's CPU priority; where the platform refuses, hashing still works at
/// normal priority.
fn lower_priority() {
    let lowered = thread_priority::ThreadPriorityValue::try_from(LOWER_PRIORITY)
        .map_err(|err| err.to_string())
        .and_then(|value| {
            thread_priority::set_current_thread_priority(
                thread_priority::ThreadPriority::Crossplatform(value),
            )
            .map_err(|err| err.to_string())
        });
    if let Err(err) = lowered {
        tracing::debug!(error = %err, "cannot lower the hashing thread's priority");
    }
}

fn hash_with(params: &Params, password: &str) -> Result<String> {
    Argon2::from(params)
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| Error::new(ErrorKind::Password, "cannot hash password").with_source(err))
}

fn check_with(params: &Params, password: &str, stored: &str) -> Result<Check> {
    if stored.starts_with(PHC_PREFIX) {
        // Verification reads the cost from the stored string; `params` is not used for it.
        return match Argon2::default().verify_password(password.as_bytes(), stored) {
            Ok(()) => Ok(Check::Valid { upgraded: None }),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(Check::Invalid),
            Err(err) => Err(Error::new(
                ErrorKind::Password,
                "stored password hash is not a valid argon2 hash",
            )
            .with_source(err)),
        };
    }
    if constant_time_eq(password.as_bytes(), stored.as_bytes()) {
        Ok(Check::Valid {
            upgraded: Some(hash_with(params, password)?),
        })
    } else {
        Ok(Check::Invalid)
    }
}

/// Compares without stopping at the first differing byte, so the time taken does not tell an
/// attacker how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..len {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Hasher {
        Hasher::with_cost(64, 1, 2).unwrap()
    }

    /// The nice value of the calling thread, from `/proc`.
    #[cfg(target_os = "linux")]
    fn own_nice() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after = stat.rsplit_once(')').unwrap().1;
        // Field 19 of the line; `after` starts at field 3.
        after.split_whitespace().nth(16).unwrap().parse().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_runs_below_the_priority_of_chat_traffic() {
        let hasher = fast();
        let mine = own_nice();
        let theirs = hasher.blocking(|| Ok(own_nice())).await.unwrap();
        assert_eq!(
            theirs,
            (mine + 10).min(19),
            "hashing threads are niced by 10"
        );
        assert!(hasher.hash("123456").await.is_ok(), "and still hash");
    }

    #[tokio::test]
    async fn hashing_threads_start_on_demand_end_when_idle_and_come_back() {
        let mut hasher = Hasher::with_cost(64, 1, 2).unwrap();
        hasher.pool = Arc::new(Pool::start(2, Duration::from_millis(50)));
        assert_eq!(hasher.pool.live(), 0, "no thread before the first hash");
        let (a, b) = tokio::join!(hasher.hash("a"), hasher.hash("b"));
        assert!(a.is_ok() && b.is_ok());
        assert!((1..=2).contains(&hasher.pool.live()));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while hasher.pool.live() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "idle threads never ended"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let hash = hasher.hash("again").await.unwrap();
        assert!(matches!(
            hasher.check("again", &hash).await.unwrap(),
            Check::Valid { .. }
        ));
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_caller_but_not_the_pool() {
        let hasher = Hasher::with_cost(64, 1, 1).unwrap();
        let failed = hasher.blocking::<()>(|| panic!("boom")).await;
        assert_eq!(failed.unwrap_err().kind(), ErrorKind::Password);
        assert!(
            hasher.hash("123456").await.is_ok(),
            "the one thread survived"
        );
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_that_check_valid() {
        let hasher = fast();
        let hash = hasher.hash("123456").await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert_eq!(
            hasher.check("123456", &hash).await.unwrap(),
            Check::Valid { upgraded: None }
        );
        assert_eq!(
            hasher.check("1234567", &hash).await.unwrap(),
            Check::Invalid
        );
    }

    #[tokio::test]
    async fn plain_text_passwords_match_once_and_come_back_hashed() {
        let hasher = fast();
        let Check::Valid {
            upgraded: Some(hash),
        } = hasher.check("123456", "123456").await.unwrap()
        else {
            panic!("plain text should match and be upgraded");
        };
        assert!(hash.starts_with("$argon2id$"));
        assert_eq!(
            hasher.check("123456", &hash).await.unwrap(),
            Check::Valid { upgraded: None }
        );
        assert_eq!(
            hasher.check("12345", "123456").await.unwrap(),
            Check::Invalid
        );
        assert_eq!(hasher.check("", "123456").await.unwrap(), Check::Invalid);
    }

    #[tokio::test]
    async fn a_corrupt_stored_hash_is_an_error_not_a_match() {
        let err = fast().check("x", "$argon2id$garbage").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Password);
    }

    #[tokio::test]
    async fn unknown_users_never_check_valid() {
        assert_eq!(
            fast().check_absent("anything").await.unwrap(),
            Check::Invalid
        );
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"\0"));
        assert!(constant_time_eq(b"", b""));
    }
}
