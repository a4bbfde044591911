//! Console → Users → Import users → Upload a file (issue 20): the people a previous
//! integration knew, from a CSV or JSON file. The upload is a dry run (what would be
//! created and updated, every error with its line); the admin then confirms, and the
//! whole file is applied in one transaction, or nothing if any row is invalid. The file's
//! text goes back with the confirm (and is validated again), so a preview never goes stale.

use crate::admin::import::{import_people, ImportRequest};
use crate::app::AppState;
use crate::domain::directory::import::{ImportFormat, ImportPlan, COLUMNS};
use crate::domain::directory::matching::MatchRule;
use crate::web::admin_session::{Admin, AdminForm};
use crate::web::error::WebError;
use crate::web::i18n::Lang;
use crate::web::pages::{render, Nav};
use crate::web::ClientIp;
use askama::Template;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

type Result<T> = std::result::Result<T, WebError>;

/// The largest file the console takes (about 100,000 rows).
pub const MAX_UPLOAD: usize = 8 * 1024 * 1024;

/// The upload and the confirm, outside the server's general body limit: a file of
/// [`MAX_UPLOAD`], and its text sent back URL-encoded (up to three times as long).
pub fn upload_routes() -> axum::Router<AppState> {
    use axum::routing::post;
    let limit = 3 * MAX_UPLOAD + 64 * 1024;
    axum::Router::new()
        .route("/console/users/import/preview", post(upload))
        .route("/console/users/import/confirm", post(confirm))
        .route("/console/users/import/rule", post(save_rule))
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(limit))
}

/// Rows of each list the preview shows.
const SHOWN: usize = 200;

#[derive(Template)]
#[template(path = "users_import.html")]
pub struct ImportPage {
    pub l: Lang,
    pub nav: Option<Nav>,
    pub csrf: String,
    pub rule: String,
    pub field: String,
    /// Problems with the upload itself (too large, not UTF-8, no file).
    pub problem: Option<String>,
    /// The dry run's (or the applied import's) plan.
    pub plan: Option<ImportPlan>,
    pub applied: bool,
    /// The file's text and format, sent back with the confirm.
    pub content: String,
    pub format: String,
    pub filename: String,
    /// The match rule was saved (without an import).
    pub rule_saved: bool,
}

impl ImportPage {
    fn columns(&self) -> &'static [&'static str] {
        &COLUMNS
    }
    fn column_help(&self, c: &&str) -> &'static str {
        let l = self.l;
        match *c {
            "id" => l.t("必填。原平台中此人的 ID（业务数据指向它），保持不变", "Required. The platform's own id for the person (business data points at it), kept as it is"),
            "name" => l.t("必填。姓名", "Required. Name"),
            "open_userid" => l.t("第三方应用拿到的 open_userid（切换时转换）", "The open_userid a third-party app had (converted by the switch)"),
            "source_agentid" => l.t("签发该 open_userid 的第三方应用 AgentId", "AgentId of the third-party app that issued the open_userid"),
            "userid" => l.t("企业微信 UserID（如已知）", "WeCom userid, if known"),
            "email" => l.t("邮箱", "Email"),
            "mobile" => l.t("手机号", "Mobile"),
            "external_key" => l.t("其他键，如工号（按扩展属性匹配）", "Any other key, e.g. employee number (matched against an extattr)"),
            _ => l.t("本地备注（同步不会修改）", "Local notes (a sync never changes them)"),
        }
    }
    fn created(&self) -> usize {
        self.plan.as_ref().map_or(0, |p| p.create.len())
    }
    fn updated(&self) -> usize {
        self.plan.as_ref().map_or(0, |p| p.update.len())
    }
    fn rows(&self) -> usize {
        self.plan.as_ref().map_or(0, |p| p.rows.len())
    }
    fn shown_create(&self) -> &[crate::domain::directory::import::PlannedRow] {
        self.plan
            .as_ref()
            .map_or(&[], |p| &p.create[..p.create.len().min(SHOWN)])
    }
    fn shown_update(&self) -> &[crate::domain::directory::import::PlannedRow] {
        self.plan
            .as_ref()
            .map_or(&[], |p| &p.update[..p.update.len().min(SHOWN)])
    }
    fn errors(&self) -> Vec<(usize, String)> {
        let zh = self.l.is_zh();
        self.plan.as_ref().map_or_else(Vec::new, |p| {
            p.errors
                .iter()
                .map(|e| (e.line, if zh { e.zh() } else { e.en() }))
                .collect()
        })
    }
    fn valid(&self) -> bool {
        self.plan.as_ref().is_some_and(|p| p.is_valid())
    }
    fn rule_selected(&self, r: &str) -> bool {
        self.rule == r
    }
}

fn rule_parts(rule: &MatchRule) -> (String, String) {
    match rule {
        MatchRule::Extattr(f) => ("extattr".into(), f.clone()),
        r => (r.as_string(), String::new()),
    }
}

fn page(admin: &Admin, l: Lang, rule: &MatchRule) -> ImportPage {
    let (rule, field) = rule_parts(rule);
    ImportPage {
        l,
        nav: Some(admin.nav("users")),
        csrf: admin.csrf().to_string(),
        rule,
        field,
        problem: None,
        plan: None,
        applied: false,
        content: String::new(),
        format: String::new(),
        filename: String::new(),
        rule_saved: false,
    }
}

#[derive(Deserialize)]
pub struct FormQuery {
    #[serde(default)]
    rule: String,
}

/// `GET /console/users/import`
pub async fn form(
    State(st): State<AppState>,
    l: Lang,
    admin: Admin,
    q: std::result::Result<
        axum::extract::Query<FormQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Response> {
    let rule = st.store.match_rule(admin.tenant.id).await?;
    let mut p = page(&admin, l, &rule);
    p.rule_saved = q.is_ok_and(|q| q.rule == "saved");
    Ok(render(&p))
}

#[derive(Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    match_rule: String,
    #[serde(default)]
    match_field: String,
}

/// `POST /console/users/import/rule`: saves the match rule alone (audited), e.g. after a
/// sync reported values the current rule cannot tell apart.
pub async fn save_rule(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    f: AdminForm<RuleForm>,
) -> Result<Response> {
    let admin = &f.admin;
    match rule_of(l, &f.form.match_rule, &f.form.match_field) {
        Ok(rule) => {
            crate::admin::import::set_match_rule(&st, admin.tenant.id, &rule, &admin.actor(), ip)
                .await?;
            Ok(axum::response::Redirect::to("/console/users/import?rule=saved").into_response())
        }
        Err(e) => {
            let mut p = page(admin, l, &MatchRule::default());
            p.rule = f.form.match_rule.clone();
            p.field = f.form.match_field.clone();
            p.problem = Some(e);
            Ok((axum::http::StatusCode::BAD_REQUEST, render(&p)).into_response())
        }
    }
}

/// The rule from the form's two fields; an error in the reader's language.
fn rule_of(l: Lang, rule: &str, field: &str) -> std::result::Result<MatchRule, String> {
    let s = if rule == "extattr" {
        format!("extattr:{}", field.trim())
    } else {
        rule.to_string()
    };
    MatchRule::parse(&s).map_err(|_| {
        l.t(
            "请选择匹配规则；按扩展属性匹配时请填写字段名（如 工号）。",
            "Choose a match rule; for an extattr, name the field (e.g. 工号).",
        )
        .to_string()
    })
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// A header parameter's value: `name="x"` or `name=x`.
fn param(header: &str, key: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Reads a `multipart/form-data` body (RFC 7578) into its parts; `None` if it is not one.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    if !content_type
        .trim()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return None;
    }
    let boundary = param(content_type, "boundary")?;
    if boundary.is_empty() {
        return None;
    }
    let delim = format!("--{boundary}");
    let next_delim = format!("\r\n--{boundary}");
    let mut pos = find(body, delim.as_bytes(), 0)? + delim.len();
    let mut parts = Vec::new();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            return Some(parts);
        }
        if body.get(pos..pos + 2) != Some(b"\r\n") {
            return None;
        }
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos)?;
        let head = std::str::from_utf8(&body[pos..head_end]).ok()?;
        let mut name = None;
        let mut filename = None;
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = param(v, "name");
                filename = param(v, "filename");
            }
        }
        let start = head_end + 4;
        let end = find(body, next_delim.as_bytes(), start)?;
        parts.push(Part {
            name: name?,
            filename,
            data: body[start..end].to_vec(),
        });
        pos = end + next_delim.len();
    }
}

/// `POST /console/users/import/preview`: the upload, answered with the dry run.
pub async fn upload(
    State(st): State<AppState>,
    l: Lang,
    admin: Admin,
    ClientIp(ip): ClientIp,
    req: Request,
) -> Result<Response> {
    let content_type = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let stored_rule = st.store.match_rule(admin.tenant.id).await?;
    let mut p = page(&admin, l, &stored_rule);
    let body = match axum::body::to_bytes(req.into_body(), MAX_UPLOAD + 64 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            p.problem = Some(
                l.t(
                    "文件超过 8 MB：请拆分后分批导入。未写入任何内容。",
                    "The file is larger than 8 MB: split it and import the parts. Nothing was written.",
                )
                .to_string(),
            );
            return Ok(render(&p));
        }
    };
    let parts = parse_multipart(&content_type, &body)
        .ok_or_else(|| WebError::BadRequest("expected a multipart/form-data upload".into()))?;
    let text_of = |n: &str| {
        parts
            .iter()
            .find(|x| x.name == n)
            .map(|x| String::from_utf8_lossy(&x.data).into_owned())
            .unwrap_or_default()
    };
    admin.check_csrf(&text_of("csrf"))?;
    let (rule, field) = (text_of("match_rule"), text_of("match_field"));
    p.rule = rule.clone();
    p.field = field.clone();
    let file = parts.iter().find(|x| x.name == "file");
    let Some(file) = file.filter(|f| !f.data.is_empty()) else {
        p.problem = Some(
            l.t(
                "请选择要上传的 CSV 或 JSON 文件。",
                "Choose a CSV or JSON file to upload.",
            )
            .to_string(),
        );
        return Ok(render(&p));
    };
    p.filename = file.filename.clone().unwrap_or_default();
    let Ok(text) = String::from_utf8(file.data.clone()) else {
        p.problem = Some(
            l.t(
                "文件不是 UTF-8 编码：在 Excel 中请“另存为 CSV UTF-8”。未写入任何内容。",
                "The file is not UTF-8: in Excel, “Save as CSV UTF-8”. Nothing was written.",
            )
            .to_string(),
        );
        return Ok(render(&p));
    };
    if let Err(e) = rule_of(l, &rule, &field) {
        p.problem = Some(e);
        return Ok(render(&p));
    }
    let format = ImportFormat::parse(&text_of("format"))
        .unwrap_or_else(|| ImportFormat::guess(file.filename.as_deref(), &text));
    let r = import_people(
        &st,
        admin.tenant.id,
        ImportRequest {
            text: &text,
            format,
            confirm: false,
            match_rule: None,
        },
        &admin.actor(),
        ip,
    )
    .await?;
    p.plan = Some(r.plan);
    p.content = text;
    p.format = format.as_str().to_string();
    Ok(render(&p))
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    content: String,
    format: String,
    #[serde(default)]
    match_rule: String,
    #[serde(default)]
    match_field: String,
    #[serde(default)]
    filename: String,
}

/// `POST /console/users/import/confirm`: the previewed file, validated again and applied
/// in one transaction (or, if anything is invalid now, the errors and nothing written).
pub async fn confirm(
    State(st): State<AppState>,
    l: Lang,
    ClientIp(ip): ClientIp,
    f: AdminForm<ConfirmForm>,
) -> Result<Response> {
    let admin = &f.admin;
    let form = &f.form;
    let mut p = page(admin, l, &MatchRule::default());
    p.rule = form.match_rule.clone();
    p.field = form.match_field.clone();
    p.filename = form.filename.clone();
    let rule = match rule_of(l, &form.match_rule, &form.match_field) {
        Ok(r) => r,
        Err(e) => {
            p.problem = Some(e);
            return Ok(render(&p));
        }
    };
    let format = ImportFormat::parse(&form.format)
        .ok_or_else(|| WebError::BadRequest("format is csv or json".into()))?;
    let r = import_people(
        &st,
        admin.tenant.id,
        ImportRequest {
            text: &form.content,
            format,
            confirm: true,
            match_rule: Some(rule),
        },
        &admin.actor(),
        ip,
    )
    .await?;
    p.applied = r.applied;
    if !r.applied {
        p.content = form.content.clone();
        p.format = format.as_str().to_string();
    }
    p.plan = Some(r.plan);
    Ok(render(&p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_bodies_are_read() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntok\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"people.csv\"\r\nContent-Type: text/csv\r\n\r\nid,name\r\n1,A\r\n\r\n--XyZ--\r\n";
        let parts = parse_multipart("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "csrf");
        assert_eq!(parts[0].data, b"tok");
        assert_eq!(parts[1].filename.as_deref(), Some("people.csv"));
        assert_eq!(parts[1].data, b"id,name\r\n1,A\r\n");
        assert!(parse_multipart("application/x-www-form-urlencoded", body).is_none());
        assert!(
            parse_multipart("multipart/form-data; boundary=\"XyZ\"", b"--XyZ\r\nbroken").is_none()
        );
    }
}
