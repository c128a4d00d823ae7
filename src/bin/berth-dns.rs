//! berth-dns: the embedded DNS server of berthd's user-defined networks,
//! a process of its own that outlives berthd (see `berth::network::dns`).
//!
//! `berth-dns <exec-root>/dns`

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(std::path::PathBuf::from) else {
        eprintln!("usage: berth-dns DIR");
        std::process::exit(2);
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_DNS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth-dns: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(berth::network::dns::serve(dir)) {
        eprintln!("berth-dns: {e}");
        std::process::exit(1);
    }
}
