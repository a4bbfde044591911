//! OAuth pages: in-client authorize, web login and legacy qrConnect (wecom-api.md §9).

use crate::Sim;
use axum::Router;

pub fn routes() -> Router<Sim> {
    Router::new()
}
