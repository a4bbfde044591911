//! The seam between the provider and the app catalogue: whether the access policy of the
//! app a client belongs to admits a member. Authorize, the code exchange and refresh all
//! ask it, so a member removed from an app's policy loses the app at the next refresh.

use crate::app::AppState;
use crate::domain::oidc::Client;
use crate::domain::user::User;
use crate::oidc::OidcError;

pub async fn app_admits(st: &AppState, client: &Client, user: &User) -> Result<bool, OidcError> {
    Ok(crate::apps::admits_user(st, client.tenant_id, client.app_id, user).await?)
}
