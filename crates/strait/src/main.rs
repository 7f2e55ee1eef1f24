//! The `strait` command: run a proxy from a configuration file, validate a file, show the version.

mod alloc_tuning;
mod signals;

/// jemalloc: glibc serves the 128-byte-aligned allocations of every Tokio task and socket
/// registration through its slow aligned path (`docs/ARCHITECTURE.md`, dependencies).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Parser, Subcommand, ValueEnum};
use strait_proxy::Server;

/// Exit code for a configuration that does not validate.
const EXIT_CONFIG: u8 = 2;
/// Exit code for a runtime failure (a socket that cannot be bound, for example).
const EXIT_RUNTIME: u8 = 1;
/// How often the configuration file is checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Strait: reverse proxy, load balancer, API gateway, forward proxy and mesh sidecar.
#[derive(Parser, Debug)]
#[command(name = "strait", version, about, propagate_version = true)]
struct Cli {
    /// Log level: error, warn, info, debug or trace (or a tracing filter such as `strait=debug`).
    #[arg(long, global = true, default_value = "info", env = "STRAIT_LOG")]
    log_level: String,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// Format of Strait's own log lines (not the access log).
#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the proxy. SIGHUP or a change of the file reloads it; SIGTERM/SIGINT drain and stop;
    /// SIGUSR1 reopens the access log.
    Run {
        /// Configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// Do not reload when the file changes (SIGHUP still reloads).
        #[arg(long)]
        no_watch: bool,
    },
    /// Check a configuration file and report every error with its line and field.
    Validate {
        /// Configuration file.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Print the version.
    Version,
    /// Translate another proxy's configuration into Strait's (printed, or written to `--output`);
    /// what cannot be translated is listed on standard error.
    Import {
        #[command(subcommand)]
        from: ImportSource,
    },
}

/// Configurations `strait import` reads.
#[derive(Subcommand, Debug)]
enum ImportSource {
    /// A Kong 3.x declarative file (`_format_version: "3.0"`).
    Kong {
        /// The Kong file.
        file: PathBuf,
        /// Where the translated listener binds.
        #[arg(long, default_value = "0.0.0.0:8000")]
        bind: String,
        /// Write the translation here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    alloc_tuning::tune();
    let cli = Cli::parse();
    init_logging(&cli.log_level, cli.log_format);
    match cli.command {
        Command::Version => {
            println!("strait {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Validate { config } => validate(&config),
        Command::Import { from: ImportSource::Kong { file, bind, output } } => {
            import_kong(&file, bind, output.as_deref())
        }
        Command::Run { config, no_watch } => run(&config, !no_watch),
    }
}

/// rustls warns once per connection about what a peer sent (an IP address as SNI, which wrk and
/// OpenSSL clients send): noise at a handshake rate, and its cost. Its errors stay; a filter that
/// names `rustls` decides for itself.
const QUIET_RUSTLS: &str = "rustls=error";

fn init_logging(level: &str, format: LogFormat) {
    let spec = if level.contains("rustls") { level.to_string() } else { format!("{level},{QUIET_RUSTLS}") };
    let filter =
        tracing_subscriber::EnvFilter::try_new(spec).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only on a terminal: a log file or journald gets plain text.
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// A configuration that loaded, and its warnings (valid, but probably not what was meant).
struct Loaded {
    config: strait_config::Config,
    warnings: Vec<strait_config::ConfigError>,
}

/// Loads a configuration file and checks what only the data path can (filter settings).
fn load(path: &Path) -> Result<Loaded, strait_config::ConfigErrors> {
    let config = strait_config::load_file(path)?;
    let warnings = strait_proxy::check(&config)?;
    Ok(Loaded { config, warnings })
}

/// `file:line:column: warning: field: message`, as errors are printed but marked.
fn warning_text(warning: &strait_config::ConfigError) -> String {
    let strait_config::ConfigError { file, line, column, path, message } = warning;
    format!("{file}:{line}:{column}: warning: {path}: {message}")
}

/// Logs each warning of a configuration being applied.
fn log_warnings(warnings: &[strait_config::ConfigError]) {
    for warning in warnings {
        tracing::warn!(warning = %warning_text(warning), "configuration warning");
    }
}

fn import_kong(path: &Path, bind: String, output: Option<&Path>) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("{}: cannot read file: {error}", path.display());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let translation = match strait_import::kong::translate(&text, &strait_import::kong::Options { bind }) {
        Ok(translation) => translation,
        Err(error) => {
            eprintln!("{}: {error}", path.display());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    for warning in &translation.warnings {
        eprintln!("{}: {warning}", path.display());
    }
    match output {
        None => print!("{}", translation.yaml),
        Some(out) => {
            if let Err(error) = std::fs::write(out, &translation.yaml) {
                eprintln!("{}: cannot write: {error}", out.display());
                return ExitCode::from(EXIT_RUNTIME);
            }
        }
    }
    eprintln!("{}: translated, {} note(s)", path.display(), translation.warnings.len());
    ExitCode::SUCCESS
}

fn validate(path: &Path) -> ExitCode {
    match load(path) {
        Ok(Loaded { config, warnings }) => {
            for warning in &warnings {
                eprintln!("{}", warning_text(warning));
            }
            let routes: usize = config.listeners.iter().map(|l| l.routes.len()).sum();
            let noted = if warnings.is_empty() { String::new() } else { format!(", {} warning(s)", warnings.len()) };
            println!(
                "{}: ok ({} listeners, {} routes, {} clusters){noted}",
                path.display(),
                config.listeners.len(),
                routes,
                config.clusters.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{}: {} error(s)", path.display(), errors.0.len());
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn run(path: &Path, watch: bool) -> ExitCode {
    // Read before loading, so a change made while starting is seen as a change.
    let mut last_modified = modified(path);
    let config = match load(path) {
        Ok(Loaded { config, warnings }) => {
            log_warnings(&warnings);
            config
        }
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Installed before any socket is bound: once a listener accepts connections, a SIGHUP or
    // SIGUSR1 must not kill the process with the default action; signals that arrive while
    // starting are queued and handled by the loop below.
    let signals = match signals::Signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let server = match Server::start(config) {
        Ok(server) => server,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    tracing::info!(config = %path.display(), "strait started");
    let mut watched = file_stamps(&server.watched_files());
    loop {
        match signals.wait(WATCH_INTERVAL) {
            Some(signals::Event::Stop) => break,
            Some(signals::Event::Reload) => reload(&server, path),
            Some(signals::Event::ReopenLogs) => {
                tracing::info!("reopening access log");
                server.reopen_logs();
            }
            None => {}
        }
        if watch {
            let now = modified(path);
            let files_now = file_stamps(&server.watched_files());
            if now != last_modified {
                last_modified = now;
                tracing::info!(config = %path.display(), "configuration file changed");
                reload(&server, path);
                watched = file_stamps(&server.watched_files());
            } else if files_now != watched {
                watched = files_now;
                tracing::info!("a certificate or key changed");
                reload(&server, path);
            }
        }
    }
    tracing::info!(open_connections = server.open_connections(), "draining");
    server.shutdown();
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Reloads from the file; on any error the running configuration stays.
fn reload(server: &Server, path: &Path) {
    let config = match load(path) {
        Ok(Loaded { config, warnings }) => {
            log_warnings(&warnings);
            config
        }
        Err(errors) => {
            for error in &errors.0 {
                tracing::error!(%error, "configuration rejected; keeping the running one");
            }
            return;
        }
    };
    if let Err(e) = server.reload(config) {
        tracing::error!(error = %e, "configuration rejected; keeping the running one");
    }
}

/// When each file changed last, for the files besides the configuration that a change reloads.
fn file_stamps(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files.iter().map(|file| modified(file)).collect()
}

fn modified(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
