//! The seam between the provider and the app catalogue: whether the access policy of the
//! app a client belongs to admits a member.
//!
//! The catalogue (its `apps` table and policies) is built separately. Until it is on main,
//! a client's `app_id` is kept but no policy can be read, so every authorized member is
//! admitted — the catalogue's own default policy. This function is the one place to link
//! when the catalogue lands; authorize, the code exchange and refresh all ask it.

use crate::app::AppState;
use crate::domain::oidc::Client;
use crate::domain::user::User;
use crate::oidc::OidcError;

pub async fn app_admits(_st: &AppState, client: &Client, user: &User) -> Result<bool, OidcError> {
    let _ = (client.app_id, user.id);
    Ok(true)
}
