use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    bridge::cli::run(bridge::cli::Cli::parse()).await
}
