//! `agent`: the daemon (`run`) and a person's views of its journal (`status`, `journal`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use protocol::receipt::format_local;
use protocol::{Payload, Seq};

use agent::config::Config;
use agent::journal::Reader;

#[derive(Parser)]
#[command(name = "agent", version, about = "The cash register agent")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the agent: journal, POS API and delivery.
    Run {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Show the register's status (works while the agent runs).
    Status {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Print the JSON of `GET /v1/status` instead.
        #[arg(long)]
        json: bool,
    },
    /// List journal entries with their delivery state.
    Journal {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Only the undelivered entries.
        #[arg(long)]
        pending: bool,
        /// Start at this seq.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// At most this many entries.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run { config } => run(&config),
        Cmd::Status { config, json } => status(&config, json),
        Cmd::Journal { config, pending, from, limit } => journal(&config, pending, from, limit),
    }
}

fn load(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).context("invalid configuration")
}

fn run(path: &Path) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let config = load(path)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        agent::run(config, listener, Arc::new(agent::clock::SystemClock), shutdown_signal())
            .await
            .context("agent failed")
    })
}

/// Resolves on SIGTERM (systemd's stop) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.ok();
}

fn status(path: &Path, json: bool) -> anyhow::Result<()> {
    let config = load(path)?;
    let reader = Reader::open(&config.data_dir, config.register.reg_number).context("cannot open the journal")?;
    let (state, _) = reader.state()?;
    let delivery = reader.delivery()?;
    let status = agent::api::status_json(&config, &state, delivery);
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    let text = |key: &str| status[key].as_str().map(str::to_owned);
    let time =
        |key: &str| text(key).and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok()).map(|t| format_local(&t));
    println!("Касса: РН СККО {}, номер СКО {}", config.register.reg_number, config.register.serial);
    match &state.open_shift {
        Some(open) => println!("Смена: {} открыта с {}", open.number, format_local(&open.opened_at)),
        None => println!("Смена: закрыта"),
    }
    println!("Следующий номер документа: {}", state.next_number);
    println!("Наличных в кассе: {}", state.drawer);
    match &state.blocked {
        Some(block) => println!("БЛОКИРОВКА с {}: {}", format_local(&block.since), block.reason),
        None => println!("Блокировка: нет"),
    }
    let pending = status["pending"].as_u64().unwrap_or(0);
    match time("oldest_pending_at") {
        Some(oldest) => println!("Не передано на сервер: {pending} (самая старая запись от {oldest})"),
        None => println!("Не передано на сервер: {pending}"),
    }
    println!("Последняя передача: {}", time("last_delivery_at").unwrap_or_else(|| "не было".into()));
    if let Some(error) = text("last_error") {
        println!("Последняя ошибка: {error}");
    }
    if let Some(tsok) = time("tsok_expires_at") {
        println!("ТСОК действует до: {tsok}");
    }
    Ok(())
}

fn journal(path: &Path, pending: bool, from: u64, limit: usize) -> anyhow::Result<()> {
    let config = load(path)?;
    let reader = Reader::open(&config.data_dir, config.register.reg_number).context("cannot open the journal")?;
    for line in reader.entries(Seq(from), pending, limit)? {
        let what = match &line.payload {
            Payload::Document(d) => {
                format!("{} N {} смена {}, {}", d.kind().label(), d.number, d.shift, d.figures().total)
            }
            Payload::Event(e) => match &e.parameter {
                Some(p) => format!("событие {} {}: {p}", e.code, e.code.label()),
                None => format!("событие {} {}", e.code, e.code.label()),
            },
        };
        let error = line.delivery_error.map(|e| format!(" ({e})")).unwrap_or_default();
        println!(
            "{:>8}  {}  {:<9}{}  {}  {}",
            line.seq,
            format_local(&line.payload.created_at()),
            line.delivery.as_str(),
            error,
            &line.hash.to_hex()[..16],
            what
        );
    }
    Ok(())
}
