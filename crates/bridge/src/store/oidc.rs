//! The OpenID Connect provider's rows (migration 0050): clients, signing keys, codes,
//! grants and tokens. Codes and tokens are stored as SHA-256 hashes only.

use super::{on_pool, Result, Store, StoreError};
use crate::domain::oidc::{Client, ClientKind, SigningAlg};
use sqlx::Row;

/// A signing key as stored; the private half is sealed.
#[derive(Clone)]
pub struct OidcKeyRecord {
    pub kid: String,
    pub tenant_id: i64,
    pub alg: SigningAlg,
    pub private_sealed: Vec<u8>,
    pub public_jwk: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for OidcKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// An authorization code, as issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcCode {
    pub code_hash: String,
    pub tenant_id: i64,
    pub client_id: String,
    pub user_id: i64,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub locale: String,
    pub expires_at: i64,
}

/// What redeeming a code found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First redemption: the code is now spent.
    Fresh(OidcCode),
    /// Already redeemed: it is now marked reused, and the grant it produced (if any)
    /// has been revoked.
    Reused,
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcGrant {
    pub id: String,
    pub tenant_id: i64,
    pub client_id: String,
    pub user_id: i64,
    pub scope: String,
    pub auth_time: i64,
    pub locale: String,
    pub created_at: i64,
}

/// A token with its grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcTokenRecord {
    pub token_hash: String,
    pub kind: String,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    pub grant: OidcGrant,
}

/// The hashes and expiries of a new access + refresh pair.
#[derive(Clone, Debug)]
pub struct NewTokenPair {
    pub access_hash: String,
    pub access_expires_at: i64,
    pub refresh_hash: String,
    pub refresh_expires_at: i64,
}

/// What rotating a refresh token did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The new pair is stored.
    Rotated,
    /// The token was rotated meanwhile by someone else (lost race): treated as a replay.
    Lost,
}

const CLIENT_COLS: &str = "client_id, tenant_id, app_id, name, kind, secret_hash, redirect_uris, \
     post_logout_redirect_uris, id_token_alg, synthesize_email, email_domain, groups_full_path, created_at, updated_at";
const KEY_COLS: &str = "kid, tenant_id, alg, private_sealed, public_jwk, created_at, retired_at";
const GRANT_COLS: &str =
    "g.id, g.tenant_id, g.client_id, g.user_id, g.scope, g.auth_time, g.locale, g.created_at";

fn json_list(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("URI list: {e}")))
}

macro_rules! client_from_row {
    ($r:expr) => {{
        let r = $r;
        let kind: String = r.try_get("kind")?;
        let alg: String = r.try_get("id_token_alg")?;
        let redirects: String = r.try_get("redirect_uris")?;
        let logouts: String = r.try_get("post_logout_redirect_uris")?;
        Client {
            client_id: r.try_get("client_id")?,
            tenant_id: r.try_get("tenant_id")?,
            app_id: r.try_get("app_id")?,
            name: r.try_get("name")?,
            kind: ClientKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("client kind {kind:?}")))?,
            secret_hash: r.try_get("secret_hash")?,
            redirect_uris: json_list(&redirects)?,
            post_logout_redirect_uris: json_list(&logouts)?,
            id_token_alg: SigningAlg::parse(&alg)
                .ok_or_else(|| StoreError::Corrupt(format!("alg {alg:?}")))?,
            synthesize_email: r.try_get("synthesize_email")?,
            email_domain: r.try_get("email_domain")?,
            groups_full_path: r.try_get("groups_full_path")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        }
    }};
}

macro_rules! key_from_row {
    ($r:expr) => {{
        let r = $r;
        let alg: String = r.try_get("alg")?;
        OidcKeyRecord {
            kid: r.try_get("kid")?,
            tenant_id: r.try_get("tenant_id")?,
            alg: SigningAlg::parse(&alg)
                .ok_or_else(|| StoreError::Corrupt(format!("alg {alg:?}")))?,
            private_sealed: r.try_get("private_sealed")?,
            public_jwk: r.try_get("public_jwk")?,
            created_at: r.try_get("created_at")?,
            retired_at: r.try_get("retired_at")?,
        }
    }};
}

macro_rules! grant_from_row {
    ($r:expr) => {{
        let r = $r;
        OidcGrant {
            id: r.try_get("id")?,
            tenant_id: r.try_get("tenant_id")?,
            client_id: r.try_get("client_id")?,
            user_id: r.try_get("user_id")?,
            scope: r.try_get("scope")?,
            auth_time: r.try_get("auth_time")?,
            locale: r.try_get("locale")?,
            created_at: r.try_get("created_at")?,
        }
    }};
}

impl Store {
    // ---------------------------------------------------------------- clients

    pub async fn insert_oidc_client(&self, c: &Client) -> Result<()> {
        let redirects = serde_json::to_string(&c.redirect_uris).unwrap_or_default();
        let logouts = serde_json::to_string(&c.post_logout_redirect_uris).unwrap_or_default();
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO oidc_clients (client_id, tenant_id, app_id, name, kind, secret_hash, redirect_uris,
                   post_logout_redirect_uris, id_token_alg, synthesize_email, email_domain, groups_full_path, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(&c.client_id)
            .bind(c.tenant_id)
            .bind(c.app_id)
            .bind(&c.name)
            .bind(c.kind.as_str())
            .bind(&c.secret_hash)
            .bind(&redirects)
            .bind(&logouts)
            .bind(c.id_token_alg.as_str())
            .bind(c.synthesize_email)
            .bind(&c.email_domain)
            .bind(c.groups_full_path)
            .bind(c.created_at)
            .bind(c.updated_at)
            .execute(p)
            .await
            .map_err(|e| StoreError::unique(e, "client"))?;
            Ok(())
        })
    }

    /// A client of `tenant_id` (a client id of another tenant is not found).
    pub async fn oidc_client(&self, tenant_id: i64, client_id: &str) -> Result<Option<Client>> {
        let sql = format!(
            "SELECT {CLIENT_COLS} FROM oidc_clients WHERE tenant_id = $1 AND client_id = $2"
        );
        on_pool!(self, |p| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(client_id)
                .fetch_optional(p)
                .await?
            {
                Some(r) => Ok(Some(client_from_row!(&r))),
                None => Ok(None),
            }
        })
    }

    pub async fn list_oidc_clients(&self, tenant_id: i64) -> Result<Vec<Client>> {
        let sql = format!(
            "SELECT {CLIENT_COLS} FROM oidc_clients WHERE tenant_id = $1 ORDER BY name, client_id"
        );
        on_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(client_from_row!(r));
            }
            Ok(out)
        })
    }

    /// Replaces a confidential client's secret hash; false when there is no such client.
    pub async fn set_oidc_client_secret(
        &self,
        tenant_id: i64,
        client_id: &str,
        secret_hash: &str,
        now: i64,
    ) -> Result<bool> {
        on_pool!(self, |p| {
            let n = sqlx::query(
                "UPDATE oidc_clients SET secret_hash = $1, updated_at = $2
                 WHERE tenant_id = $3 AND client_id = $4 AND kind = 'confidential'",
            )
            .bind(secret_hash)
            .bind(now)
            .bind(tenant_id)
            .bind(client_id)
            .execute(p)
            .await?
            .rows_affected();
            Ok(n > 0)
        })
    }

    /// Deletes a client and every grant and token it holds.
    pub async fn delete_oidc_client(&self, tenant_id: i64, client_id: &str) -> Result<bool> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "DELETE FROM oidc_tokens WHERE grant_id IN
                 (SELECT id FROM oidc_grants WHERE tenant_id = $1 AND client_id = $2)",
            )
            .bind(tenant_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM oidc_grants WHERE tenant_id = $1 AND client_id = $2")
                .bind(tenant_id)
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM oidc_codes WHERE tenant_id = $1 AND client_id = $2")
                .bind(tenant_id)
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
            let n = sqlx::query("DELETE FROM oidc_clients WHERE tenant_id = $1 AND client_id = $2")
                .bind(tenant_id)
                .bind(client_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(n > 0)
        })
    }

    // ---------------------------------------------------------------- keys

    /// The active (signing) key of a tenant for `alg`.
    pub async fn oidc_active_key(
        &self,
        tenant_id: i64,
        alg: SigningAlg,
    ) -> Result<Option<OidcKeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLS} FROM oidc_keys WHERE tenant_id = $1 AND alg = $2 AND retired_at IS NULL"
        );
        on_pool!(self, |p| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(alg.as_str())
                .fetch_optional(p)
                .await?
            {
                Some(r) => Ok(Some(key_from_row!(&r))),
                None => Ok(None),
            }
        })
    }

    /// One key by kid (active or retired) of a tenant.
    pub async fn oidc_key(&self, tenant_id: i64, kid: &str) -> Result<Option<OidcKeyRecord>> {
        let sql = format!("SELECT {KEY_COLS} FROM oidc_keys WHERE tenant_id = $1 AND kid = $2");
        on_pool!(self, |p| {
            match sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(kid)
                .fetch_optional(p)
                .await?
            {
                Some(r) => Ok(Some(key_from_row!(&r))),
                None => Ok(None),
            }
        })
    }

    /// The keys the JWKS publishes: active ones, and those retired after `retired_after`.
    pub async fn oidc_published_keys(
        &self,
        tenant_id: i64,
        retired_after: i64,
    ) -> Result<Vec<OidcKeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLS} FROM oidc_keys WHERE tenant_id = $1 AND (retired_at IS NULL OR retired_at > $2)
             ORDER BY created_at DESC, kid"
        );
        on_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(retired_after)
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(key_from_row!(r));
            }
            Ok(out)
        })
    }

    /// Stores a new active key unless the tenant already has one for its alg (another
    /// instance won the race); `retire` is the kid it replaces, retired at `k.created_at`
    /// in the same transaction. Returns whether `k` became active.
    pub async fn put_oidc_key(&self, k: &OidcKeyRecord, retire: Option<&str>) -> Result<bool> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            if let Some(old) = retire {
                let n = sqlx::query(
                    "UPDATE oidc_keys SET retired_at = $1 WHERE tenant_id = $2 AND kid = $3 AND retired_at IS NULL",
                )
                .bind(k.created_at)
                .bind(k.tenant_id)
                .bind(old)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
            }
            let n = sqlx::query(
                "INSERT INTO oidc_keys (kid, tenant_id, alg, private_sealed, public_jwk, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(&k.kid)
            .bind(k.tenant_id)
            .bind(k.alg.as_str())
            .bind(&k.private_sealed)
            .bind(&k.public_jwk)
            .bind(k.created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(n > 0)
        })
    }

    // ---------------------------------------------------------------- codes

    pub async fn insert_oidc_code(&self, c: &OidcCode) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO oidc_codes (code_hash, tenant_id, client_id, user_id, redirect_uri, scope, nonce,
                   code_challenge, auth_time, locale, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&c.code_hash)
            .bind(c.tenant_id)
            .bind(&c.client_id)
            .bind(c.user_id)
            .bind(&c.redirect_uri)
            .bind(&c.scope)
            .bind(&c.nonce)
            .bind(&c.code_challenge)
            .bind(c.auth_time)
            .bind(&c.locale)
            .bind(c.expires_at)
            .execute(p)
            .await
            .map_err(|e| StoreError::unique(e, "code"))?;
            Ok(())
        })
    }

    /// Spends a code. The first redeemer gets it; any later one marks it reused and
    /// revokes the grant it produced, in one transaction.
    pub async fn redeem_oidc_code(
        &self,
        tenant_id: i64,
        code_hash: &str,
        now: i64,
    ) -> Result<CodeRedemption> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let r = sqlx::query(
                "UPDATE oidc_codes SET redeemed_at = $1 WHERE code_hash = $2 AND tenant_id = $3 AND redeemed_at IS NULL
                 RETURNING code_hash, tenant_id, client_id, user_id, redirect_uri, scope, nonce, code_challenge,
                   auth_time, locale, expires_at",
            )
            .bind(now)
            .bind(code_hash)
            .bind(tenant_id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(r) = r {
                let code = OidcCode {
                    code_hash: r.try_get("code_hash")?,
                    tenant_id: r.try_get("tenant_id")?,
                    client_id: r.try_get("client_id")?,
                    user_id: r.try_get("user_id")?,
                    redirect_uri: r.try_get("redirect_uri")?,
                    scope: r.try_get("scope")?,
                    nonce: r.try_get("nonce")?,
                    code_challenge: r.try_get("code_challenge")?,
                    auth_time: r.try_get("auth_time")?,
                    locale: r.try_get("locale")?,
                    expires_at: r.try_get("expires_at")?,
                };
                tx.commit().await?;
                return Ok(CodeRedemption::Fresh(code));
            }
            let r = sqlx::query(
                "UPDATE oidc_codes SET reused = TRUE WHERE code_hash = $1 AND tenant_id = $2 RETURNING grant_id",
            )
            .bind(code_hash)
            .bind(tenant_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(r) = r else {
                return Ok(CodeRedemption::Unknown);
            };
            let grant: Option<String> = r.try_get("grant_id")?;
            if let Some(g) = grant {
                sqlx::query("DELETE FROM oidc_tokens WHERE grant_id = $1")
                    .bind(&g)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM oidc_grants WHERE id = $1")
                    .bind(&g)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(CodeRedemption::Reused)
        })
    }

    // ---------------------------------------------------------------- grants and tokens

    /// Creates the grant of a redeemed code with its first token pair. Fails (false, nothing
    /// stored) when the code was reused in the meantime.
    pub async fn create_oidc_grant(
        &self,
        code_hash: &str,
        g: &OidcGrant,
        t: &NewTokenPair,
    ) -> Result<bool> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE oidc_codes SET grant_id = $1 WHERE code_hash = $2 AND reused = FALSE AND grant_id IS NULL",
            )
            .bind(&g.id)
            .bind(code_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO oidc_grants (id, tenant_id, client_id, user_id, scope, auth_time, locale, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&g.id)
            .bind(g.tenant_id)
            .bind(&g.client_id)
            .bind(g.user_id)
            .bind(&g.scope)
            .bind(g.auth_time)
            .bind(&g.locale)
            .bind(g.created_at)
            .execute(&mut *tx)
            .await?;
            for (hash, kind, exp) in [
                (&t.access_hash, "access", t.access_expires_at),
                (&t.refresh_hash, "refresh", t.refresh_expires_at),
            ] {
                sqlx::query(
                    "INSERT INTO oidc_tokens (token_hash, grant_id, tenant_id, user_id, kind, expires_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(hash)
                .bind(&g.id)
                .bind(g.tenant_id)
                .bind(g.user_id)
                .bind(kind)
                .bind(exp)
                .bind(g.created_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// A live token of a tenant with its grant (a revoked grant's tokens are gone).
    pub async fn oidc_token(
        &self,
        tenant_id: i64,
        token_hash: &str,
    ) -> Result<Option<OidcTokenRecord>> {
        let sql = format!(
            "SELECT t.token_hash, t.kind, t.expires_at, t.rotated_at, {GRANT_COLS}
             FROM oidc_tokens t JOIN oidc_grants g ON g.id = t.grant_id
             WHERE t.token_hash = $1 AND t.tenant_id = $2"
        );
        on_pool!(self, |p| {
            let r = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(token_hash)
                .bind(tenant_id)
                .fetch_optional(p)
                .await?;
            match r {
                None => Ok(None),
                Some(r) => Ok(Some(OidcTokenRecord {
                    token_hash: r.try_get("token_hash")?,
                    kind: r.try_get("kind")?,
                    expires_at: r.try_get("expires_at")?,
                    rotated_at: r.try_get("rotated_at")?,
                    grant: grant_from_row!(&r),
                })),
            }
        })
    }

    /// Rotates refresh token `old_hash` to `new`: on first use it is marked rotated; on a
    /// retry within the grace (`retry`), the successors it produced before are replaced.
    pub async fn rotate_oidc_refresh(
        &self,
        grant: &OidcGrant,
        old_hash: &str,
        new: &NewTokenPair,
        retry: bool,
        now: i64,
    ) -> Result<Rotation> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            if retry {
                sqlx::query("DELETE FROM oidc_tokens WHERE parent_hash = $1")
                    .bind(old_hash)
                    .execute(&mut *tx)
                    .await?;
            } else {
                let n = sqlx::query(
                    "UPDATE oidc_tokens SET rotated_at = $1 WHERE token_hash = $2 AND rotated_at IS NULL",
                )
                .bind(now)
                .bind(old_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    return Ok(Rotation::Lost);
                }
            }
            for (hash, kind, exp) in [
                (&new.access_hash, "access", new.access_expires_at),
                (&new.refresh_hash, "refresh", new.refresh_expires_at),
            ] {
                sqlx::query(
                    "INSERT INTO oidc_tokens (token_hash, grant_id, tenant_id, user_id, kind, expires_at, parent_hash, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(hash)
                .bind(&grant.id)
                .bind(grant.tenant_id)
                .bind(grant.user_id)
                .bind(kind)
                .bind(exp)
                .bind(old_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(Rotation::Rotated)
        })
    }

    /// Revokes a grant: it and all its tokens are deleted.
    pub async fn revoke_oidc_grant(&self, grant_id: &str) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM oidc_tokens WHERE grant_id = $1")
                .bind(grant_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM oidc_grants WHERE id = $1")
                .bind(grant_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn delete_oidc_token(&self, token_hash: &str) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("DELETE FROM oidc_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    /// Housekeeping: drops expired tokens (a rotated refresh token is kept until it expires,
    /// so its replay is still recognised), grants left without tokens, and codes well past
    /// their expiry.
    pub async fn prune_oidc(&self, now: i64) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query("DELETE FROM oidc_tokens WHERE expires_at < $1")
                .bind(now)
                .execute(p)
                .await?;
            sqlx::query(
                "DELETE FROM oidc_grants WHERE created_at < $1
                 AND NOT EXISTS (SELECT 1 FROM oidc_tokens t WHERE t.grant_id = oidc_grants.id)",
            )
            .bind(now - 60_000)
            .execute(p)
            .await?;
            sqlx::query("DELETE FROM oidc_codes WHERE expires_at < $1")
                .bind(now - 10 * 60_000)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    /// Live grants of a user (for tests and the console).
    pub async fn oidc_grants_of_user(
        &self,
        tenant_id: i64,
        user_id: i64,
    ) -> Result<Vec<OidcGrant>> {
        let sql = format!(
            "SELECT {GRANT_COLS} FROM oidc_grants g WHERE g.tenant_id = $1 AND g.user_id = $2 ORDER BY g.created_at"
        );
        on_pool!(self, |p| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(user_id)
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(grant_from_row!(r));
            }
            Ok(out)
        })
    }

    /// The department names above `department_id` (itself last), root first.
    pub async fn department_path(&self, tenant_id: i64, department_id: i64) -> Result<Vec<String>> {
        on_pool!(self, |p| {
            let mut names = Vec::new();
            let mut id = department_id;
            // Bounded walk: WeCom nests departments at most 15 levels deep.
            for _ in 0..32 {
                let r = sqlx::query(
                    "SELECT parent_id, name FROM departments WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(p)
                .await?;
                let Some(r) = r else { break };
                names.push(r.try_get::<String, _>("name")?);
                let parent: i64 = r.try_get("parent_id")?;
                if parent == 0 || parent == id {
                    break;
                }
                id = parent;
            }
            names.reverse();
            Ok(names)
        })
    }
}
