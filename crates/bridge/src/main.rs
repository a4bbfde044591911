use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    bridge::cli::init_tracing();
    bridge::cli::run(bridge::cli::Cli::parse()).await
}
