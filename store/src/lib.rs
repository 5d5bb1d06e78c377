//! The store: one schema, two dialects (`migrations/sqlite`, `migrations/postgres`),
//! the same queries on both through sqlx's `Any` driver.
//!
//! Invariants:
//! - Times are UTC epoch milliseconds (`i64`); booleans are 0/1 integers.
//!   The Any driver decodes only integers, reals, text and blobs on SQLite.
//! - Every query here is plain SQL understood by both SQLite and PostgreSQL
//!   (`ON CONFLICT … DO UPDATE/NOTHING`, `excluded`); multi-row statements
//!   take their placeholders from `Params` (`$N` on PostgreSQL, `?` on
//!   SQLite, where numbered ones cost a scan per bind).
//! - SQLite runs in WAL mode with `synchronous=FULL`: a commit survives power
//!   loss, not only a crash. Ingest batches its commits, so FULL costs little
//!   (ARCHITECTURE.md has the figures).

mod alerts;
mod audit;
mod backup;
mod care;
mod contacts;
mod delivery;
mod devices;
mod elders;
mod enrolment;
mod evidence;
mod homes;
mod identities;
mod ingest;
mod ledger;
mod maintenance;
mod messages;
mod months;
mod partitions;
mod rate;
mod responders;
mod sessions;
mod spot_checks;
mod users;
mod visits;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::postgres::PgListener;
use sqlx::{Any, AnyPool, Connection, Executor};
use tokio::sync::watch;

pub use alerts::{
    AckStats, AlertActionError, AlertChange, AlertEventRecord, AlertFilter, AlertRecord, DueReminder, OpenAlert,
    RegionFilter, Scope,
};
pub use audit::{AUDIT_RETENTION_MS, AuditVerdict};
pub use backup::{BackupSummary, check_backup, newest_schema};
pub use care::{CareService, Referral};
pub use contacts::{ContactRecord, MAX_CONTACTS};
pub use devices::{DeviceRecord, DeviceStatusCounts, PairRefusal};
pub use elders::Elder;
pub use enrolment::{Enrolment, ExitEffects, ExitRecord};
pub use evidence::StoredEvidence;
pub use identities::{IdentityRecord, NewIdentity, StoredIdentity};
pub use ingest::{DeviceNote, HourRollup, MessageRow, QUARANTINE_CAP, QUARANTINE_PAYLOAD_MAX, QuarantineRow};
pub use ledger::{ImportError, ImportOutcome, RowChange};
pub use maintenance::{AUDIT_MIN_DAYS, RETENTION_BATCH, Retained, RetentionPolicy, RetentionReport};
pub use messages::{HourActivity, MessageCursor, MessageRecord};
pub use months::{ClosedMonth, LateVisit};
pub use partitions::{DAYS_AHEAD, MessageDay};
pub use responders::{
    AnswerError, Answered, ChainRecord, DueChain, DutyShift, LinkView, Outgoing, Reached, ResponderMessage,
    ResponseFigures, Settled,
};
pub use sessions::{Session, SessionInfo, SessionLimits, SessionPlace};
pub use spot_checks::{SpotCheck, SpotCheckItem};
pub use users::{AuditEntry, TOKEN_ID_LEN, TokenRecord, UserRecord};
pub use visits::{Absence, DayRecord, HeightenedWatch, VisitRecord};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (created with its folder if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL URL, `postgres://user@host:port/db`.
    Postgres(String),
}

impl Database {
    /// `postgres://…` / `postgresql://…`, `sqlite://PATH`, or a plain file path.
    pub fn parse(text: &str) -> Database {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Database::Postgres(text.to_string())
        } else {
            Database::Sqlite(PathBuf::from(text.strip_prefix("sqlite://").unwrap_or(text)))
        }
    }

    /// The SQLite file inside a data folder.
    pub fn in_data_dir(data_dir: &Path) -> Database {
        Database::Sqlite(data_dir.join("anxin.sqlite3"))
    }

    /// For logs: never prints a password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("SQLite {}", path.display()),
            Database::Postgres(url) => match url.split_once('@') {
                Some((_, host)) => format!("PostgreSQL {host}"),
                None => format!("PostgreSQL {url}"),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data folder {path}: {source}")]
    DataFolder { path: PathBuf, source: std::io::Error },
    #[error("cannot open {what}: {source}")]
    Open { what: String, source: sqlx::Error },
    #[error("cannot apply database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    /// The database has no room to write: SQLite's SQLITE_FULL (the disk
    /// or `max_page_count` is full), PostgreSQL's `disk_full` (53100).
    /// Nothing was written; the same write succeeds once space returns.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StoreError::Sql(sqlx::Error::Database(error)) => {
                matches!(error.code().as_deref(), Some("13" | "53100"))
                    || error.message().contains("database or disk is full")
            }
            _ => false,
        }
    }
}

/// Whether the database has room to write, as the writers last found it:
/// marked when a write fails for want of space ([`StoreError::is_storage_full`]),
/// cleared by the next write that commits. Ingest marks it (its writer
/// retries until the write goes through); the console and `/healthz` read it.
#[derive(Debug, Clone, Default)]
pub struct Storage(Arc<std::sync::atomic::AtomicI64>);

impl Storage {
    /// Since when (UTC ms) writes fail for want of space; `None` while they succeed.
    pub fn full_since(&self) -> Option<i64> {
        Some(self.0.load(std::sync::atomic::Ordering::Relaxed)).filter(|&since| since != 0)
    }

    /// A write failed for want of space at `now`. True when it was not so before.
    pub fn full_at(&self, now: i64) -> bool {
        self.0
            .compare_exchange(0, now.max(1), std::sync::atomic::Ordering::Relaxed, std::sync::atomic::Ordering::Relaxed)
            .is_ok()
    }

    /// A write committed. True when writes were failing for want of space before.
    pub fn room_again(&self) -> bool {
        self.0.swap(0, std::sync::atomic::Ordering::Relaxed) != 0
    }
}

/// A handle to the database; cheap to clone. Plain persistence: it knows
/// tables and rows, not rules; `anxin_gateway::ingest::pipeline` decides what is
/// written when.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// The id of the newest alert event this process wrote: wakes the feed
    /// and the delivery sinks without polling.
    pub(crate) alert_written: Arc<watch::Sender<i64>>,
    /// SQLite has one writer: write transactions of this process take turns
    /// here, first come first served, instead of racing for the file lock
    /// (whose busy handler sleeps and can starve the timer loop behind a
    /// busy ingest).
    write_turns: Arc<tokio::sync::Mutex<()>>,
    storage: Storage,
    /// When each device's current boot began, as committed.
    boot_starts: Arc<BootStarts>,
    /// PostgreSQL: the task that hears other processes' alert events
    /// (stopped when the last handle goes).
    _listener: Option<Arc<AbortOnDrop>>,
}

/// When each device's current boot began, as committed ([`Write::boot_starts`]):
/// a boot's start never changes once committed, so a batch whose devices
/// were all heard from before in this boot needs no lookup. One entry per
/// device (its boot last stored); emptied when it would hold more than
/// [`BootStarts::KEPT`].
#[derive(Debug, Default)]
pub(crate) struct BootStarts(std::sync::Mutex<HashMap<String, (u32, i64)>>);

impl BootStarts {
    /// Devices kept: a province's (about 100 bytes each).
    const KEPT: usize = 2_000_000;

    /// Each device's kept boot and its start (not to be held across an await).
    pub(crate) fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, i64)>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn learn(&self, committed: Vec<(String, u32, i64)>) {
        let mut kept = self.kept();
        if kept.len() + committed.len() > Self::KEPT {
            kept.clear();
        }
        for (device, boot, started_at) in committed {
            kept.insert(device, (boot, started_at));
        }
    }
}

/// Aborts a task when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The channel migration 0024 notifies on PostgreSQL.
const ALERT_EVENTS_CHANNEL: &str = "anxin_alert_events";

/// Design: in a province the store writers and the console are separate
/// processes; an alert event committed by any of them reaches the others'
/// feeds and sinks by PostgreSQL's NOTIFY (migration 0024) within
/// milliseconds, not at their once-a-second look. A lost connection is
/// made again (sqlx's listener does it); what was committed meanwhile is
/// found by that look.
async fn hear_alert_events(url: String, mut first: Option<PgListener>, written: Arc<watch::Sender<i64>>) {
    loop {
        let heard: Result<(), sqlx::Error> = async {
            let mut listener = match first.take() {
                Some(listener) => listener,
                None => listen_for_alert_events(&url).await?,
            };
            loop {
                let notification = listener.recv().await?;
                if let Ok(event_id) = notification.payload().parse::<i64>() {
                    note_written(&written, event_id);
                }
            }
        }
        .await;
        if let Err(error) = heard {
            tracing::warn!(%error, "cannot hear other processes' alert events; the feed looks once a second");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen_for_alert_events(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(ALERT_EVENTS_CHANNEL).await?;
    Ok(listener)
}

fn note_written(written: &watch::Sender<i64>, event_id: i64) {
    written.send_if_modified(|newest| {
        let newer = event_id > *newest;
        *newest = (*newest).max(event_id);
        newer
    });
}

impl Store {
    /// Opens the database and brings its schema up to date.
    pub async fn open(database: &Database) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = match database {
            Database::Sqlite(path) => {
                if let Some(folder) = path.parent().filter(|folder| !folder.as_os_str().is_empty()) {
                    std::fs::create_dir_all(folder)
                        .map_err(|source| StoreError::DataFolder { path: folder.to_path_buf(), source })?;
                }
                (format!("sqlite://{}?mode=rwc", path.display()), Backend::Sqlite)
            }
            Database::Postgres(url) => (url.clone(), Backend::Postgres),
        };
        let open_error = |source| StoreError::Open { what: database.describe(), source };
        let options = AnyConnectOptions::from_str(&url).map_err(open_error)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(30))
            .after_release(|connection, _| {
                Box::pin(async move {
                    // Design: a connection whose transaction could be neither
                    // committed nor rolled back (a COMMIT that failed on a
                    // full disk: SQLite had already rolled back, so sqlx's
                    // ROLLBACK failed too) is still "in a transaction" to
                    // sqlx, and every later BEGIN on it fails — ingest would
                    // never recover when space returns. The ping lets the
                    // rollback queued by the dropped transaction run first;
                    // a connection still in a transaction after it is closed
                    // (SQLite rolls back whatever is open) and replaced.
                    connection.ping().await?;
                    Ok(!connection.is_in_transaction())
                })
            })
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Design: WAL + FULL so a PUBACKed message survives power loss.
                        connection.execute("PRAGMA journal_mode = WAL").await?;
                        connection.execute("PRAGMA synchronous = FULL").await?;
                        connection.execute("PRAGMA busy_timeout = 10000").await?;
                        // Design: 32 MiB of page cache per connection (the
                        // default is 2 MiB): the indexes of a growing
                        // messages table outgrow 2 MiB after a few hundred
                        // thousand rows, and then every insert reads pages.
                        connection.execute("PRAGMA cache_size = -32768").await?;
                        connection.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(open_error)?;
        if let (Backend::Sqlite, Database::Sqlite(path)) = (backend, database) {
            // Before a migration changes the file, a copy of it as it was
            // (the way back is `anxin restore` of that copy with the old binary).
            if let Some(from) = backup::applied_schema(&pool).await?.filter(|from| *from < newest_schema()) {
                let copy = backup::before_migration_path(path, from, newest_schema(), chrono::Utc::now());
                if let Some(folder) = copy.parent() {
                    std::fs::create_dir_all(folder)
                        .map_err(|source| StoreError::DataFolder { path: folder.to_path_buf(), source })?;
                }
                backup::vacuum_into(&pool, &copy).await?;
                tracing::info!(copy = %copy.display(), from, to = newest_schema(), "copied the database before migrating it");
            }
        }
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        let alert_written = Arc::new(watch::channel(0).0);
        let listener = if backend == Backend::Postgres {
            // Listening before open returns: nothing committed after it is missed.
            let first = listen_for_alert_events(&url)
                .await
                .inspect_err(|error| tracing::warn!(%error, "cannot listen for other processes' alert events yet"))
                .ok();
            let task = tokio::spawn(hear_alert_events(url.clone(), first, alert_written.clone()));
            Some(Arc::new(AbortOnDrop(task.abort_handle())))
        } else {
            None
        };
        let store = Store {
            pool,
            backend,
            alert_written,
            write_turns: Arc::default(),
            storage: Storage::default(),
            boot_starts: Arc::default(),
            _listener: listener,
        };
        store.seal_audit_log().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether writes find room (see [`Storage`]).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Waits for this process's turn to write (SQLite); PostgreSQL needs no
    /// turns. Hold the guard until the transaction commits.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => Some(Arc::clone(&self.write_turns).lock_owned().await),
            Backend::Postgres => None,
        }
    }

    /// Begins a transaction that will write: on SQLite, `BEGIN IMMEDIATE`,
    /// taking the database's write lock at once. A deferred transaction that
    /// reads first cannot become a writer once another connection has
    /// written since its read (SQLITE_BUSY_SNAPSHOT, which no busy timeout
    /// waits out) — and the cursor updates of the sinks and the responder
    /// chain, the CLI and other processes write outside this process's
    /// turns. Hold [`Store::write_turn`] first.
    pub(crate) async fn begin_immediate(&self) -> Result<sqlx::Transaction<'static, Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Begins a write transaction, in this process's turn (SQLite).
    pub async fn begin_write(&self) -> Result<Write, StoreError> {
        let turn = self.write_turn().await;
        let transaction = match self.backend {
            // Design: take SQLite's write lock at BEGIN. A deferred
            // transaction that reads first cannot become a writer once
            // another connection (another process, or a statement outside the
            // turns) has written since its read: SQLITE_BUSY_SNAPSHOT, which
            // no busy timeout waits out.
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Write {
            transaction,
            backend: self.backend,
            boot_starts: self.boot_starts.clone(),
            learned: Vec::new(),
            _turn: turn,
        })
    }

    /// Changes whenever this process writes alert events (the newest id),
    /// and on PostgreSQL whenever another process commits some.
    pub fn alert_writes(&self) -> watch::Receiver<i64> {
        self.alert_written.subscribe()
    }

    /// Wakes the feed and the sinks: alert events up to `event_id` are committed.
    pub fn note_alert_written(&self, event_id: i64) {
        note_written(&self.alert_written, event_id);
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// One write transaction: everything written through it commits together or
/// not at all. Dropped without [`Write::commit`], it rolls back.
#[derive(Debug)]
pub struct Write {
    pub(crate) transaction: sqlx::Transaction<'static, Any>,
    backend: Backend,
    pub(crate) boot_starts: Arc<BootStarts>,
    /// Boot starts read in this transaction, kept once it commits (one it
    /// wrote itself is not anyone's until then).
    pub(crate) learned: Vec<(String, u32, i64)>,
    /// Held until the commit (SQLite's one writer).
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Write {
    pub async fn commit(self) -> Result<(), StoreError> {
        self.transaction.commit().await?;
        self.boot_starts.learn(self.learned);
        Ok(())
    }

    /// Undoes everything the transaction wrote (as dropping it does, but
    /// done when this returns).
    pub async fn rollback(self) -> Result<(), StoreError> {
        Ok(self.transaction.rollback().await?)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

/// Rows per multi-row statement are split into chunks of `max`, then into
/// powers of two: whatever the batch size, a statement has one of a handful
/// of shapes, so every shape stays in the connection's statement cache
/// instead of being prepared again for each new row count.
pub(crate) fn chunk_sizes(rows: usize, max: usize) -> impl Iterator<Item = usize> {
    let mut left = rows;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let size = if left >= max { max } else { 1 << (usize::BITS - 1 - left.leading_zeros()) };
        left -= size;
        Some(size)
    })
}

/// The placeholders of one statement, in their order of appearance: `$1`,
/// `$2`, … on PostgreSQL, `?` on SQLite. Binds then go in the same order.
///
/// Design: SQLite finds the slot of a numbered parameter (`$7`, `?7`) by a
/// linear scan of the statement's parameter names, once per bind, so a
/// 2,500-value insert spends most of its time there (measured: a fifth of
/// the CPU of a loaded gateway); anonymous `?` parameters bind by position.
#[derive(Debug)]
pub(crate) struct Params {
    backend: Backend,
    next: usize,
}

impl Params {
    pub(crate) fn new(backend: Backend) -> Params {
        Params { backend, next: 1 }
    }

    /// One placeholder.
    pub(crate) fn one(&mut self) -> String {
        let text = match self.backend {
            Backend::Sqlite => "?".to_string(),
            Backend::Postgres => format!("${}", self.next),
        };
        self.next += 1;
        text
    }

    /// `count` placeholders separated by commas: an `IN (…)` list.
    pub(crate) fn list(&mut self, count: usize) -> String {
        (0..count).map(|_| self.one()).collect::<Vec<_>>().join(", ")
    }

    /// `(…), (…)` for `rows` rows of `columns` values.
    pub(crate) fn rows(&mut self, rows: usize, columns: usize) -> String {
        (0..rows).map(|_| format!("({})", self.list(columns))).collect::<Vec<_>>().join(", ")
    }
}

/// Now, in the store's time unit.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_take_a_few_shapes_with_each_backends_placeholders() {
        let split = |rows| chunk_sizes(rows, 128).collect::<Vec<_>>();
        assert_eq!(split(0), Vec::<usize>::new());
        assert_eq!(split(1), [1]);
        assert_eq!(split(300), [128, 128, 32, 8, 4]);
        assert!((1..2_000).all(|rows| chunk_sizes(rows, 128).all(|size| size.is_power_of_two())));
        assert_eq!(Params::new(Backend::Postgres).rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        let mut sqlite = Params::new(Backend::Sqlite);
        assert_eq!((sqlite.one(), sqlite.list(2)), ("?".to_string(), "?, ?".to_string()));
    }

    #[test]
    fn database_locations_parse_from_urls_and_paths() {
        assert_eq!(Database::parse("postgres://u@h/db"), Database::Postgres("postgres://u@h/db".into()));
        assert_eq!(Database::parse("sqlite://data/x.db"), Database::Sqlite("data/x.db".into()));
        assert_eq!(Database::parse("x.db"), Database::Sqlite("x.db".into()));
        assert_eq!(Database::parse("postgres://anxin:secret@db:5432/anxin").describe(), "PostgreSQL db:5432/anxin");
    }
}
