//! Admin API for tests and demos (`/sim/admin/...`).

use crate::Sim;
use axum::Router;

pub fn routes() -> Router<Sim> {
    Router::new()
}
