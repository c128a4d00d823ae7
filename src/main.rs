//! berthd: flags and daemon.json, tracing, then the daemon on tokio.

use clap::Parser;

use berth::config::{self, Flags};
use berth::daemon::{self, Startup};
use berth::{logging, sys};

fn main() {
    let flags = Flags::parse();
    if flags.version {
        println!(
            "Berth version {}, build {}",
            env!("CARGO_PKG_VERSION"),
            env!("BERTH_GIT_COMMIT")
        );
        return;
    }
    let loaded = match config::load(&flags) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if flags.validate {
        println!("configuration OK");
        return;
    }
    // One TLS provider for every client and server in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Before any thread exists: take the systemd-activated sockets.
    let activated_fds = sys::systemd::listen_fds();
    let log = logging::init(&loaded.config);
    // Tests' crash points (off unless BERTH_TEST_FAILPOINTS names a file):
    // a kill -9 of this process where a point is armed.
    berth_actors::failpoint::install(|_| {
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
    });
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("failed to start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(daemon::run(Startup {
        flags,
        loaded,
        log,
        activated_fds,
    }));
    match code {
        Ok(c) => std::process::exit(c),
        Err(e) => {
            eprintln!("failed to start daemon: {e}");
            std::process::exit(1);
        }
    }
}
