//! The simulator's front page (`/`): what a newcomer to the demo opens first. It lists
//! each simulated company, its apps with their home pages (a browser gets QR sign-in
//! there), its first members, and the admin API. In-client sign-in needs WeCom's
//! User-Agent, which a page cannot set for the browser: the page says how.

use crate::oauth::{esc, html_response, page};
use crate::Sim;
use axum::extract::State;
use axum::response::Response;

/// Members listed per company; the admin API lists them all.
const MEMBERS_SHOWN: usize = 20;

pub async fn index(State(sim): State<Sim>) -> Response {
    let w = sim.world();
    let mut body = String::from(
        "<div class=\"card\"><div class=\"brand\"><span class=\"logo\">企</span>企业微信（模拟）· Simulated WeCom</div>\
<p class=\"sub\">本页列出模拟的企业、应用和成员。The companies, apps and members this simulator serves.</p>",
    );
    if w.corps.is_empty() {
        body.push_str("<p class=\"sub\">还没有企业。No company yet: load a scenario through the admin API.</p>");
    }
    for corp in w.corps.values() {
        body.push_str(&format!(
            "<h1>{}</h1><p class=\"sub\">CorpID <code>{}</code> · {} 个成员 members</p>",
            esc(&corp.name),
            esc(&corp.corpid),
            corp.members.len()
        ));
        body.push_str("<ul class=\"list\" data-testid=\"apps\">");
        for app in corp.apps.values() {
            let open = if app.home_url.is_empty() {
                "<span class=\"meta\">未设置应用主页 · no home page set</span>".to_string()
            } else {
                format!(
                    "<a href=\"{0}\" data-testid=\"app-home\">{0}</a><span class=\"meta\">在浏览器中打开为扫码登录；在企业微信客户端中（User-Agent 含 <code>wxwork/</code>）为静默登录。A browser gets QR sign-in; with a WeCom User-Agent (containing <code>wxwork/</code>, e.g. set in the browser's developer tools) it signs in silently.</span>",
                    esc(&app.home_url)
                )
            };
            body.push_str(&format!(
                "<li><p><strong>{}</strong> · AgentId {}</p><p>{open}</p></li>",
                esc(&app.name),
                app.agentid
            ));
        }
        body.push_str("</ul><ul class=\"list\" data-testid=\"members\">");
        for m in corp.members.values().take(MEMBERS_SHOWN) {
            body.push_str(&format!(
                "<li><p>{} <span class=\"meta\">{}</span></p></li>",
                esc(&m.name),
                esc(&m.userid)
            ));
        }
        if corp.members.len() > MEMBERS_SHOWN {
            body.push_str(&format!(
                "<li><p class=\"meta\">… {} more: <a href=\"/sim/admin/scenario\">the whole scenario</a></p></li>",
                corp.members.len() - MEMBERS_SHOWN
            ));
        }
        body.push_str("</ul>");
    }
    body.push_str(
        "<p class=\"note\">扫码登录时，在模拟的扫码页选择成员即可。On the simulated QR page, pick the member who scans. \
Admin API: <a href=\"/sim/admin/corps\">/sim/admin/corps</a> · <a href=\"/sim/admin/scenario\">/sim/admin/scenario</a></p></div>",
    );
    html_response(page("企业微信（模拟）", None, &body))
}
