//! The one writer: a thread that owns the journal's write connection and commits in
//! groups. Requests that arrive while a commit is in flight are decided and written
//! together in the next transaction; each is answered only after that transaction's
//! `COMMIT` returned, so an answer always means "durable".

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, TimeDelta};
use protocol::{Answer, ChainHash, ChainHead, Directive, EventCode, Payload, ReceiptHeader, Uid};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::clock::Clock;
use crate::config::Config;
use crate::journal::{Journal, JournalError, Remembered, WriteTx};
use crate::rules::{Command, Decision, Refusal, RegisterState, Surroundings, decide, event, review_blocking};
use crate::views::ShiftOpened;
use protocol::DocumentView;

/// The most requests one transaction carries.
const MAX_GROUP: usize = 512;
/// How long idempotency keys are honoured at least.
const IDEMPOTENCY_KEEP: TimeDelta = TimeDelta::hours(48);

/// An idempotency key and the hash of the request it came with.
#[derive(Clone, Debug)]
pub struct Idempotency {
    /// The `Idempotency-Key` header.
    pub key: String,
    /// SHA-256 of the request (path and canonical body).
    pub request_hash: [u8; 32],
}

/// What the writer answers.
#[derive(Debug)]
pub enum Reply {
    /// Journaled (or answered before under the same key): status and JSON body.
    Done {
        /// The HTTP status.
        status: u16,
        /// The JSON body.
        body: String,
    },
    /// The rules refused it; nothing was written.
    Refused(Refusal),
    /// The key was used before with another request.
    KeyReused,
    /// The journal could not write (a full disk, say); nothing was written.
    Unavailable(String),
}

/// What the forwarder learned from one attempt, to be recorded in the journal.
#[derive(Clone, Debug)]
pub enum DeliveryReport {
    /// The server answered: per-entry verdicts and directives.
    Answered(Answer),
    /// The attempt failed; the reason is shown in the status.
    Failed(String),
}

enum Job {
    Command { command: Command, idempotency: Option<Idempotency>, reply: oneshot::Sender<Reply> },
    Delivery { report: DeliveryReport, reply: oneshot::Sender<Result<(), String>> },
    Tick,
    Stop { reply: oneshot::Sender<()> },
}

/// The jobs one transaction carries.
#[derive(Default)]
struct Group {
    commands: Vec<(Command, Option<Idempotency>)>,
    command_replies: Vec<oneshot::Sender<Reply>>,
    reports: Vec<DeliveryReport>,
    report_replies: Vec<oneshot::Sender<Result<(), String>>>,
}

/// What readers may see of the writer's state: as of the last commit.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The register's state.
    pub state: RegisterState,
    /// The chain head.
    pub head: ChainHead,
}

/// The handle the API uses to reach the writer.
#[derive(Clone)]
pub struct WriterHandle {
    jobs: mpsc::Sender<Job>,
    snapshot: watch::Receiver<Snapshot>,
    committed: Arc<Notify>,
}

/// The writer is gone (the agent is stopping).
#[derive(Debug, thiserror::Error)]
#[error("агент останавливается")]
pub struct Stopped;

impl WriterHandle {
    /// Decides and journals `command`; answers once it is durable.
    pub async fn submit(&self, command: Command, idempotency: Option<Idempotency>) -> Result<Reply, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job::Command { command, idempotency, reply }).await.map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// Records what the forwarder learned; returns once it is durable.
    pub async fn report(&self, report: DeliveryReport) -> Result<Result<(), String>, Stopped> {
        let (reply, done) = oneshot::channel();
        self.jobs.send(Job::Delivery { report, reply }).await.map_err(|_| Stopped)?;
        done.await.map_err(|_| Stopped)
    }

    /// Resolves after the next commit (or at once if one happened since the last call):
    /// the forwarder waits on this for new entries.
    pub async fn committed(&self) {
        self.committed.notified().await;
    }

    /// Asks the writer to review the blocking rules now.
    pub async fn tick(&self) -> Result<(), Stopped> {
        self.jobs.send(Job::Tick).await.map_err(|_| Stopped)
    }

    /// The state as of the last commit.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    /// Journals event 1011 and stops the writer.
    pub async fn stop(&self) -> Result<(), Stopped> {
        let (reply, done) = oneshot::channel();
        self.jobs.send(Job::Stop { reply }).await.map_err(|_| Stopped)?;
        done.await.map_err(|_| Stopped)
    }
}

/// How long the writer keeps polling for the next request before it sleeps: a POS app's
/// next request usually comes within this, and waking a sleeping thread costs more.
const SPIN: Duration = Duration::from_micros(300);

/// The next job: polled for [`SPIN`], then waited for.
fn next_job(inbox: &mut mpsc::Receiver<Job>) -> Option<Job> {
    let until = Instant::now() + SPIN;
    loop {
        match inbox.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) if Instant::now() < until => std::hint::spin_loop(),
            Err(mpsc::error::TryRecvError::Empty) => return inbox.blocking_recv(),
        }
    }
}

/// The writer thread's state.
struct Writer {
    journal: Journal,
    state: RegisterState,
    head: ChainHead,
    config: Arc<Config>,
    header: ReceiptHeader,
    clock: Arc<dyn Clock>,
    published: watch::Sender<Snapshot>,
    committed: Arc<Notify>,
    last_purge: Option<DateTime<FixedOffset>>,
}

/// Opens the journal, journals event 1010 and starts the writer thread.
pub fn start(config: Arc<Config>, clock: Arc<dyn Clock>) -> Result<(WriterHandle, JoinHandle<()>), JournalError> {
    let r = &config.register;
    let journal = Journal::open(&config.data_dir, r.reg_number, &r.start)?;
    let (state, head) = journal.load()?;
    let header = ReceiptHeader { org_name: r.org_name.clone(), unp: r.unp, reg_number: r.reg_number };
    let (published, snapshot) = watch::channel(Snapshot { state: state.clone(), head });
    let committed = Arc::new(Notify::new());
    let mut writer = Writer {
        journal,
        state,
        head,
        config,
        header,
        clock,
        published,
        committed: committed.clone(),
        last_purge: None,
    };
    writer.record(EventCode::PowerOn, None)?;
    let (jobs, inbox) = mpsc::channel(4 * MAX_GROUP);
    let thread = std::thread::Builder::new()
        .name("journal-writer".into())
        .spawn(move || writer.run(inbox))
        .expect("spawning the writer thread");
    Ok((WriterHandle { jobs, snapshot, committed }, thread))
}

impl Writer {
    fn run(mut self, mut inbox: mpsc::Receiver<Job>) {
        while let Some(first) = next_job(&mut inbox) {
            let mut jobs = vec![first];
            while jobs.len() < MAX_GROUP {
                match inbox.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            let mut stops = Vec::new();
            let mut group = Group::default();
            for job in jobs {
                match job {
                    Job::Command { command, idempotency, reply } => {
                        group.commands.push((command, idempotency));
                        group.command_replies.push(reply);
                    }
                    Job::Delivery { report, reply } => {
                        group.reports.push(report);
                        group.report_replies.push(reply);
                    }
                    Job::Tick => {}
                    Job::Stop { reply } => stops.push(reply),
                }
            }
            self.group(group);
            if !stops.is_empty() {
                if let Err(e) = self.record(EventCode::PowerOff, None) {
                    tracing::error!("could not journal the power-off event: {e}");
                }
                for stop in stops {
                    let _ = stop.send(());
                }
                return;
            }
        }
    }

    /// Decides and commits a group in one transaction, then answers each job in it.
    fn group(&mut self, group: Group) {
        let now = self.clock.now_in(self.config.register.time_zone);
        match self.commit_group(&group.commands, &group.reports, now) {
            Ok(outcome) => {
                if let Some((state, head)) = outcome.committed {
                    self.publish(state, head);
                }
                for (sender, reply) in group.command_replies.into_iter().zip(outcome.replies) {
                    let _ = sender.send(reply);
                }
                for sender in group.report_replies {
                    let _ = sender.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!("journal write failed, nothing written: {e}");
                for sender in group.command_replies {
                    let _ = sender.send(Reply::Unavailable(e.to_string()));
                }
                for sender in group.report_replies {
                    let _ = sender.send(Err(e.to_string()));
                }
            }
        }
    }

    fn commit_group(
        &mut self,
        work: &[(Command, Option<Idempotency>)],
        reports: &[DeliveryReport],
        now: DateTime<FixedOffset>,
    ) -> Result<GroupOutcome, JournalError> {
        let rules = self.config.rules;
        let tx = self.journal.begin()?;
        let mut state = self.state.clone();
        let mut head = self.head;
        // Whether anything was written: a group of refusals and idle ticks commits nothing.
        let mut dirty = !reports.is_empty();
        for report in reports {
            match report {
                DeliveryReport::Answered(answer) => {
                    tx.apply_results(&answer.results, &now)?;
                    tx.record_delivery(Some(&now), None)?;
                    for directive in &answer.directives {
                        state.server_block = match directive {
                            Directive::Block { reason } => Some(reason.clone()),
                            Directive::Unblock { .. } => None,
                        };
                    }
                }
                DeliveryReport::Failed(error) => tx.record_delivery(None, Some(error))?,
            }
        }
        let around = Surroundings {
            tsok_expires_at: self.config.register.tsok_expires_at,
            oldest_pending_at: tx.oldest_pending_at()?,
        };
        if let Some(decision) = review_blocking(&state, &rules, &around, now) {
            state = apply(&tx, &mut head, decision)?.0;
            dirty = true;
        }
        if self.last_purge.is_none_or(|last| now - last > TimeDelta::hours(1)) {
            dirty |= tx.forget_before((now - IDEMPOTENCY_KEEP).timestamp())? > 0;
            self.last_purge = Some(now);
        }
        let mut replies = Vec::with_capacity(work.len());
        for (command, idempotency) in work {
            if let Some(idem) = idempotency
                && let Some(seen) = tx.remembered(&idem.key)?
            {
                replies.push(if seen.request_hash == idem.request_hash {
                    Reply::Done { status: seen.status, body: seen.response }
                } else {
                    Reply::KeyReused
                });
                continue;
            }
            let referenced = match command {
                Command::Document { request, .. } => match request.reference() {
                    Some(number) => tx.referenced(number)?,
                    None => None,
                },
                _ => None,
            };
            match decide(&state, &rules, command, referenced.as_ref(), now) {
                Err(refusal) => replies.push(Reply::Refused(refusal)),
                Ok(decision) => {
                    let first = decision.payloads.first().cloned().expect("every accepted command journals something");
                    let (next, hash) = apply(&tx, &mut head, decision)?;
                    state = next;
                    dirty = true;
                    let body = answer(&self.header, &first, &hash.expect("journaled"), &state);
                    if let Some(idem) = idempotency {
                        let answer =
                            Remembered { request_hash: idem.request_hash, status: 201, response: body.clone() };
                        tx.remember(&idem.key, &answer, now.timestamp())?;
                    }
                    replies.push(Reply::Done { status: 201, body });
                }
            }
        }
        if !dirty {
            // Dropping the transaction rolls it back: nothing to make durable.
            return Ok(GroupOutcome { committed: None, replies });
        }
        tx.save_state(&state, &head)?;
        tx.commit()?;
        Ok(GroupOutcome { committed: Some((state, head)), replies })
    }

    /// Journals an event by itself (1010 at start, 1011 at a clean stop).
    fn record(&mut self, code: EventCode, parameter: Option<String>) -> Result<(), JournalError> {
        let now = self.clock.now_in(self.config.register.time_zone);
        let tx = self.journal.begin()?;
        let mut head = self.head;
        tx.append(&mut head, &event(code, now, parameter))?;
        tx.save_state(&self.state, &head)?;
        tx.commit()?;
        let state = self.state.clone();
        self.publish(state, head);
        Ok(())
    }

    fn publish(&mut self, state: RegisterState, head: ChainHead) {
        self.state = state.clone();
        self.head = head;
        self.published.send_replace(Snapshot { state, head });
        self.committed.notify_one();
    }
}

/// What a group's transaction came to.
struct GroupOutcome {
    /// The state and head it committed, or `None` if it wrote nothing.
    committed: Option<(RegisterState, ChainHead)>,
    /// One reply per command, in order.
    replies: Vec<Reply>,
}

/// Appends a decision's payloads; returns the new state and the first entry's hash.
fn apply(
    tx: &WriteTx<'_>,
    head: &mut ChainHead,
    decision: Decision,
) -> Result<(RegisterState, Option<ChainHash>), JournalError> {
    let mut first = None;
    for payload in &decision.payloads {
        let entry = tx.append(head, payload)?;
        first.get_or_insert(entry.hash);
    }
    Ok((decision.state, first))
}

/// The JSON answer to an accepted command: the document it made, or the shift it opened.
fn answer(header: &ReceiptHeader, first: &Payload, hash: &ChainHash, state: &RegisterState) -> String {
    let json = match (first, &state.open_shift) {
        (Payload::Document(document), _) => {
            let uid = Uid::new(hash, header.reg_number);
            serde_json::to_string(&DocumentView::new(header, document, &uid))
        }
        (Payload::Event(_), Some(open)) => {
            serde_json::to_string(&ShiftOpened { shift: open.number, opened_at: open.opened_at })
        }
        (Payload::Event(e), None) => unreachable!("a command journals a lone event only to open a shift: {e:?}"),
    };
    json.expect("views serialize")
}
