//! `cabinet-server`: `serve`, the operator's `admin` commands and the `demo` (CONTRACTS §4).

use std::path::PathBuf;

use anyhow::Context;
use cabinet_server::accounts;
use cabinet_server::config::Config;
use cabinet_server::demo::DemoOptions;
use cabinet_server::store::{NewDevice, ObjectId, Role};
use cabinet_server::tokens;
use clap::{Parser, Subcommand};
use protocol::{RegNumber, Serial, Unp};

#[derive(Parser)]
#[command(name = "cabinet-server", version, about = "The cabinet server")]
struct Cli {
    /// The configuration file (`CABINET_*` environment variables win over it).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run ingest, the portal and the API.
    Serve,
    /// The operator's commands.
    Admin {
        #[command(subcommand)]
        command: Admin,
    },
    /// The whole system on one machine: an embedded database, demo data and two simulated
    /// registers feeding it; prints the portal's URL and a login.
    Demo {
        /// Where the demo keeps its database and the registers' journals (reused on a rerun).
        #[arg(long, default_value = "cabinet-demo")]
        data_dir: PathBuf,
        /// Where the portal listens.
        #[arg(long, default_value = cabinet_server::config::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// Taxpayers.
    Unp {
        #[command(subcommand)]
        command: UnpCmd,
    },
    /// Trade objects.
    Object {
        #[command(subcommand)]
        command: ObjectCmd,
    },
    /// Cash registers.
    Device {
        #[command(subcommand)]
        command: DeviceCmd,
    },
    /// Merchant users.
    User {
        #[command(subcommand)]
        command: UserCmd,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCmd,
    },
    /// Operator accounts for the back office.
    Operator {
        #[command(subcommand)]
        command: OperatorCmd,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a merchant user; prints the generated password.
    Add {
        #[arg(long)]
        login: String,
        #[arg(long)]
        email: String,
        /// A taxpayer the user holds (repeat for several).
        #[arg(long = "unp", required = true, value_parser = parse::<Unp>)]
        unps: Vec<Unp>,
    },
    /// Give a user another taxpayer.
    Link {
        #[arg(long)]
        login: String,
        #[arg(long, value_parser = parse::<Unp>)]
        unp: Unp,
    },
    /// Give a user a new generated password (ending their sessions); prints it.
    ResetPassword {
        #[arg(long)]
        login: String,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Make an API token for a user; prints it.
    Create {
        #[arg(long)]
        login: String,
        /// What the token is for.
        #[arg(long, default_value = "API")]
        name: String,
    },
}

#[derive(Subcommand)]
enum OperatorCmd {
    /// Add an operator account; prints the generated password.
    Add {
        #[arg(long)]
        login: String,
        #[arg(long, default_value = "")]
        email: String,
    },
}

#[derive(Subcommand)]
enum UnpCmd {
    /// Add a taxpayer.
    Add {
        #[arg(long, value_parser = parse::<Unp>)]
        unp: Unp,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum ObjectCmd {
    /// Add a trade object; prints its id.
    Add {
        #[arg(long, value_parser = parse::<Unp>)]
        unp: Unp,
        #[arg(long)]
        name: String,
        #[arg(long)]
        address: String,
        #[arg(long)]
        actual_address: Option<String>,
    },
}

#[derive(Subcommand)]
enum DeviceCmd {
    /// Register a cash register; prints its device token.
    Add {
        #[arg(long, value_parser = parse::<Unp>)]
        unp: Unp,
        #[arg(long)]
        object: i64,
        #[arg(long, value_parser = parse::<RegNumber>)]
        reg_number: RegNumber,
        #[arg(long, value_parser = parse::<Serial>)]
        serial: Serial,
        #[arg(long, value_parser = parse::<chrono::NaiveDate>)]
        commissioned: chrono::NaiveDate,
        /// The register's IANA time zone.
        #[arg(long, default_value = "Europe/Minsk", value_parser = parse::<chrono_tz::Tz>)]
        time_zone: chrono_tz::Tz,
    },
    /// Order a register blocked at its next contact.
    Block {
        #[arg(long, value_parser = parse::<RegNumber>)]
        reg_number: RegNumber,
        #[arg(long)]
        reason: String,
    },
    /// Lift the block ordered before.
    Unblock {
        #[arg(long, value_parser = parse::<RegNumber>)]
        reg_number: RegNumber,
    },
    /// Show a register's delivery state.
    Show {
        #[arg(long, value_parser = parse::<RegNumber>)]
        reg_number: RegNumber,
    },
}

/// A clap value parser for any `FromStr` domain type.
fn parse<T: std::str::FromStr>(text: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| e.to_string())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref()).context("invalid configuration")?;
    match cli.command {
        Cmd::Serve => serve(config),
        Cmd::Admin { command } => admin(&config, command),
        Cmd::Demo { data_dir, listen } => demo(DemoOptions { data_dir, listen }),
    }
}

fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
}

fn serve(config: Config) -> anyhow::Result<()> {
    init_logging();
    let store = cabinet_server::open_store(&config).context("cannot open the database")?;
    let listener =
        std::net::TcpListener::bind(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    tracing::info!("serving on {scheme}://{}", listener.local_addr()?);
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(cabinet_server::serve(&config, listener, store, shutdown_signal())).context("server failed")
}

fn demo(options: DemoOptions) -> anyhow::Result<()> {
    init_logging();
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(cabinet_server::demo::run(options, shutdown_signal()))
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn admin(config: &Config, command: Admin) -> anyhow::Result<()> {
    let store = cabinet_server::open_store(config).context("cannot open the database")?;
    match command {
        Admin::Unp { command: UnpCmd::Add { unp, name } } => store.add_taxpayer(unp, &name)?,
        Admin::Object { command: ObjectCmd::Add { unp, name, address, actual_address } } => {
            let id = store.add_object(unp, &name, &address, actual_address.as_deref())?;
            println!("{}", id.0);
        }
        Admin::Device { command } => match command {
            DeviceCmd::Add { unp, object, reg_number, serial, commissioned, time_zone } => {
                let token = tokens::new_token();
                store.add_device(&NewDevice {
                    unp,
                    object: ObjectId(object),
                    reg_number,
                    serial,
                    commissioned_on: commissioned,
                    time_zone,
                    token_hash: tokens::token_hash(&token),
                })?;
                println!("{token}");
            }
            DeviceCmd::Block { reg_number, reason } => store.set_block_directive(reg_number, Some(&reason))?,
            DeviceCmd::Unblock { reg_number } => store.set_block_directive(reg_number, None)?,
            DeviceCmd::Show { reg_number } => {
                let status = store.device_status(reg_number)?;
                println!("seq: {}", status.head_seq);
                println!("flagged: {}", status.flagged.as_deref().unwrap_or("-"));
                println!("last seen: {}", status.last_seen_at.map_or("-".into(), |t| t.to_rfc3339()));
                if let Some(info) = status.info {
                    println!("pending on the register: {}", info.pending);
                }
            }
        },
        Admin::User { command } => match command {
            UserCmd::Add { login, email, unps } => {
                let (_, password) = accounts::create_user(store.as_ref(), &login, &email, Role::Merchant, &unps)?;
                println!("{password}");
            }
            UserCmd::Link { login, unp } => store.link_user(&login, unp)?,
            UserCmd::ResetPassword { login } => println!("{}", accounts::reset_password(store.as_ref(), &login)?),
        },
        Admin::Token { command: TokenCmd::Create { login, name } } => {
            let user = store.user_by_login(&login)?.with_context(|| format!("пользователь {login} не найден"))?;
            let (_, token) = accounts::create_api_token(store.as_ref(), user.id, &name)?;
            println!("{token}");
        }
        Admin::Operator { command: OperatorCmd::Add { login, email } } => {
            let (_, password) = accounts::create_user(store.as_ref(), &login, &email, Role::Operator, &[])?;
            println!("{password}");
        }
    }
    Ok(())
}
