//! `cormorant-sandbox`: runs an ASGI app's HTTP and WebSocket scenarios
//! with the app in a WebAssembly sandbox, and reports every ASGI violation,
//! uncaught exception, timeout and memory blow-up.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use cormorant_wasm_host::sandbox::{AppSandbox, BuildSpec, Limits, scenario};
use wasmtime::Result;
use wasmtime::error::Context;

#[derive(Parser)]
#[command(name = "cormorant-sandbox", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Build {
    /// The app, as module:attribute.
    app: String,
    /// Where the app's module is (searched first).
    #[arg(long, default_value = ".")]
    app_dir: PathBuf,
    /// A directory of pure-Python dependencies (pip install --target DIR); repeatable.
    #[arg(long = "python-path", value_name = "DIR")]
    python_path: Vec<PathBuf>,
    /// The componentize-py command.
    #[arg(
        long,
        env = "CORMORANT_COMPONENTIZE_PY",
        default_value = "componentize-py"
    )]
    componentize_py: PathBuf,
    /// Where built components and compiled code are cached
    /// (default: ~/.cache/cormorant/sandbox).
    #[arg(long, env = "CORMORANT_SANDBOX_CACHE")]
    cache_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Build the app into a component (cached) and print its path.
    Build(Build),
    /// Build the app and run scenario files against it.
    Run {
        #[command(flatten)]
        build: Build,
        /// Scenario files (TOML).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Wall-clock seconds per connection.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Seconds the app's timers may run (virtual time).
        #[arg(long, default_value_t = 60.0)]
        virtual_time: f64,
        /// Memory limit in MiB.
        #[arg(long, default_value_t = 512)]
        memory: usize,
        /// A directory the app may read, as HOST::GUEST, or HOST (the app
        /// sees it at its absolute path).
        #[arg(long, value_name = "DIR")]
        read_dir: Option<String>,
        /// Do not run the app's lifespan (startup and shutdown) around each
        /// connection.
        #[arg(long)]
        no_lifespan: bool,
    },
}

impl Build {
    fn spec(&self) -> Result<BuildSpec> {
        let cache_dir = match &self.cache_dir {
            Some(d) => d.clone(),
            None => std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .context("no cache directory: pass --cache-dir")?
                .join("cormorant/sandbox"),
        };
        let mut python_path = vec![self.app_dir.clone()];
        python_path.extend(self.python_path.iter().cloned());
        Ok(BuildSpec {
            app: self.app.clone(),
            python_path,
            componentize_py: self.componentize_py.clone(),
            cache_dir,
        })
    }
}

/// `HOST::GUEST`, or `HOST` seen by the app at its absolute host path.
fn read_dir(arg: &str) -> Result<(PathBuf, String)> {
    if let Some((host, guest)) = arg.split_once("::") {
        return Ok((host.into(), guest.into()));
    }
    let abs = std::fs::canonicalize(arg).with_context(|| format!("--read-dir {arg}"))?;
    Ok((abs.clone(), abs.to_string_lossy().into_owned()))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("cormorant-sandbox: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether every scenario passed.
fn run(cli: Cli) -> Result<bool> {
    match cli.command {
        Command::Build(b) => {
            println!("{}", b.spec()?.build()?.display());
            Ok(true)
        }
        Command::Run {
            build,
            scenarios,
            timeout,
            virtual_time,
            memory,
            read_dir: dir,
            no_lifespan,
        } => {
            let spec = build.spec()?;
            let files = scenarios
                .iter()
                .map(|p| {
                    let text = std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?;
                    scenario::parse(&text).with_context(|| p.display().to_string())
                })
                .collect::<Result<Vec<_>>>()?;
            let limits = Limits {
                time: Duration::try_from_secs_f64(timeout).context("invalid --timeout")?,
                virtual_time,
                memory: memory << 20,
                read_dir: dir.as_deref().map(read_dir).transpose()?,
                lifespan: !no_lifespan,
            };
            let component = spec.build()?;
            let sandbox = AppSandbox::load(&component, Some(&spec.cache_dir), limits)?;
            let (mut passed, mut failed) = (0, 0);
            for s in files.iter().flat_map(|f| &f.scenario) {
                let ex = sandbox.run(&s.request())?;
                let problems = s.check(&ex);
                print!("{}", scenario::report(s, &ex, &problems));
                if problems.is_empty() {
                    passed += 1;
                } else {
                    failed += 1;
                }
            }
            println!("{passed} passed, {failed} failed");
            Ok(failed == 0)
        }
    }
}
