//! The signal that stops `serve` and `demo` gracefully (in-flight requests finish, a
//! running sync is left consistent by its one-transaction apply). Its own module, so the
//! two commands share it without importing each other.

/// Ctrl-C, or SIGTERM from a service manager. The handlers are installed when this is
/// called, not when the future is first polled, so a signal that arrives while the banner
/// is being printed is not lost (nor kills the process).
pub fn signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
