//! An import of the people a previous integration knew (issue 20): a CSV or JSON file,
//! one person a row, each with the platform's own id for them (the internal user id
//! business data points at, kept as it is), a name, and at least one key the first sync
//! can find them by: a third-party `open_userid` with the `source_agentid` of the app
//! that issued it (re-linked by the switch, wecom-api.md §7), a WeCom userid, an email,
//! a mobile or any other key (an employee number, matched against a WeCom extattr).
//!
//! Parsing and validation are pure: every row is checked, every problem listed with its
//! line, and nothing is written unless the whole file is valid ([`plan_import`] decides
//! what would be created or updated; the store applies it in one transaction).

use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// Rows per file.
pub const MAX_ROWS: usize = 100_000;

/// The columns (CSV header, JSON object keys), in the order a template shows them.
pub const COLUMNS: [&str; 9] = [
    "id",
    "name",
    "open_userid",
    "source_agentid",
    "userid",
    "email",
    "mobile",
    "external_key",
    "notes",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportFormat {
    Csv,
    Json,
}

impl ImportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Some(ImportFormat::Csv),
            "json" => Some(ImportFormat::Json),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ImportFormat::Csv => "csv",
            ImportFormat::Json => "json",
        }
    }

    /// From the file's name (`.json`, `.csv`), else from its first character (`[` is
    /// JSON).
    pub fn guess(filename: Option<&str>, text: &str) -> Self {
        let lower = filename.unwrap_or_default().to_ascii_lowercase();
        if lower.ends_with(".json") {
            return ImportFormat::Json;
        }
        if lower.ends_with(".csv") {
            return ImportFormat::Csv;
        }
        if strip_bom(text).trim_start().starts_with('[') {
            ImportFormat::Json
        } else {
            ImportFormat::Csv
        }
    }
}

/// One valid row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportRow {
    /// The line the row starts on (the CSV header is line 1).
    pub line: usize,
    /// The platform's own id for the person: the internal user id, kept.
    pub id: i64,
    pub name: String,
    pub open_userid: Option<String>,
    pub source_agentid: Option<i64>,
    /// A WeCom userid, as spelt.
    pub userid: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
    /// Any other key, e.g. an employee number (工号).
    pub external_key: Option<String>,
    /// Local notes (the bridge owns them; a sync never touches them).
    pub notes: Option<String>,
}

/// What is wrong with a file or a row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ImportProblem {
    Empty,
    /// The file cannot be read as CSV or JSON at all.
    Syntax(String),
    NotAnArray,
    NotAnObject,
    MissingColumn(&'static str),
    UnknownColumn(String),
    DuplicateColumn(String),
    ColumnCount {
        expected: usize,
        found: usize,
    },
    TooManyRows,
    /// A JSON value that is neither text nor a number.
    NotAValue(String),
    Missing(&'static str),
    BadId(String),
    BadAgentid(String),
    OpenUseridWithoutAgent,
    AgentidWithoutOpenUserid,
    BadOpenUserid(String),
    BadUserid(String),
    BadEmail(String),
    BadMobile(String),
    TooLong {
        field: &'static str,
        max: usize,
    },
    /// None of open_userid, userid, email, mobile or external_key.
    NoKey,
    DuplicateId {
        first_line: usize,
    },
    DuplicateKey {
        field: &'static str,
        value: String,
        first_line: usize,
    },
    // Checked against what the store holds ([`plan_import`]).
    IdOfAnotherTenant(i64),
    AlreadyLinked {
        id: i64,
        userid: String,
    },
    OpenUseridTaken {
        user_id: i64,
    },
    UseridTaken {
        user_id: i64,
    },
    /// An open_userid needs the company's CorpID: set-up step 2 is not done.
    NoIntegration,
}

/// A problem and the line it is on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImportError {
    pub line: usize,
    pub problem: ImportProblem,
}

impl ImportError {
    fn new(line: usize, problem: ImportProblem) -> Self {
        ImportError { line, problem }
    }

    pub fn en(&self) -> String {
        use ImportProblem::*;
        match &self.problem {
            Empty => "the file is empty".into(),
            Syntax(m) => format!("cannot read the file: {m}"),
            NotAnArray => "a JSON import is an array of objects: [{\"id\": 1, \"name\": …}, …]".into(),
            NotAnObject => "each element of the array must be an object".into(),
            MissingColumn(c) => format!("the column \"{c}\" is missing (columns: {})", COLUMNS.join(", ")),
            UnknownColumn(c) => format!("unknown column \"{c}\" (columns: {})", COLUMNS.join(", ")),
            DuplicateColumn(c) => format!("the column \"{c}\" appears twice"),
            ColumnCount { expected, found } => format!("{found} values where the header has {expected} columns"),
            TooManyRows => format!("more than {MAX_ROWS} rows: split the file"),
            NotAValue(f) => format!("\"{f}\" must be text or a number"),
            Missing(f) => format!("\"{f}\" is empty"),
            BadId(v) => format!("id \"{v}\" is not a positive whole number"),
            BadAgentid(v) => format!("source_agentid \"{v}\" is not an agentid (a positive whole number)"),
            OpenUseridWithoutAgent => "open_userid needs the source_agentid of the third-party app that issued it".into(),
            AgentidWithoutOpenUserid => "source_agentid is given without an open_userid".into(),
            BadOpenUserid(v) => format!("open_userid \"{v}\" is not one: up to 64 letters, digits, _ or -"),
            BadUserid(v) => format!("userid \"{v}\" is not a WeCom userid: 1 to 64 letters, digits, _ - . or @"),
            BadEmail(v) => format!("email \"{v}\" is not an email address"),
            BadMobile(v) => format!("mobile \"{v}\" is not a phone number: 5 to 20 digits, + - and spaces allowed"),
            TooLong { field, max } => format!("\"{field}\" is longer than {max} characters"),
            NoKey => "no key to find this person by: give an open_userid (with source_agentid), userid, email, mobile or external_key".into(),
            DuplicateId { first_line } => format!("the same id as line {first_line}"),
            DuplicateKey { field, value, first_line } => format!("{field} \"{value}\" is also on line {first_line}: a key names one person"),
            IdOfAnotherTenant(id) => format!("id {id} belongs to a user of another tenant: choose the ids of this tenant's people"),
            AlreadyLinked { id, userid } => format!("user #{id} is already linked to WeCom userid {userid}: WeCom owns that person now, nothing to import"),
            OpenUseridTaken { user_id } => format!("this open_userid already belongs to user #{user_id}"),
            UseridTaken { user_id } => format!("this WeCom userid already belongs to user #{user_id}"),
            NoIntegration => "an open_userid is kept with the company's CorpID: complete set-up step 2 first".into(),
        }
    }

    pub fn zh(&self) -> String {
        use ImportProblem::*;
        match &self.problem {
            Empty => "文件为空".into(),
            Syntax(m) => format!("无法读取文件：{m}"),
            NotAnArray => "JSON 导入须为对象数组：[{\"id\": 1, \"name\": …}, …]".into(),
            NotAnObject => "数组的每个元素都须为对象".into(),
            MissingColumn(c) => format!("缺少列“{c}”（可用列：{}）", COLUMNS.join(", ")),
            UnknownColumn(c) => format!("未知的列“{c}”（可用列：{}）", COLUMNS.join(", ")),
            DuplicateColumn(c) => format!("列“{c}”出现了两次"),
            ColumnCount { expected, found } => format!("有 {found} 个值，但表头有 {expected} 列"),
            TooManyRows => format!("超过 {MAX_ROWS} 行：请拆分文件"),
            NotAValue(f) => format!("“{f}”须为文本或数字"),
            Missing(f) => format!("“{f}”为空"),
            BadId(v) => format!("id“{v}”不是正整数"),
            BadAgentid(v) => format!("source_agentid“{v}”不是有效的 AgentId（正整数）"),
            OpenUseridWithoutAgent => "open_userid 须同时给出签发它的第三方应用的 source_agentid".into(),
            AgentidWithoutOpenUserid => "给出了 source_agentid 却没有 open_userid".into(),
            BadOpenUserid(v) => format!("open_userid“{v}”无效：最多 64 个字母、数字、_ 或 -"),
            BadUserid(v) => format!("userid“{v}”不是企业微信 UserID：1 到 64 个字母、数字、_ - . 或 @"),
            BadEmail(v) => format!("邮箱“{v}”无效"),
            BadMobile(v) => format!("手机号“{v}”无效：5 到 20 位数字，可含 + - 和空格"),
            TooLong { field, max } => format!("“{field}”超过 {max} 个字符"),
            NoKey => "没有可用于匹配此人的键：请给出 open_userid（及 source_agentid）、userid、email、mobile 或 external_key".into(),
            DuplicateId { first_line } => format!("与第 {first_line} 行的 id 相同"),
            DuplicateKey { field, value, first_line } => format!("{field}“{value}”也出现在第 {first_line} 行：一个键只能对应一个人"),
            IdOfAnotherTenant(id) => format!("id {id} 属于另一个租户的用户：请使用本租户人员的 id"),
            AlreadyLinked { id, userid } => format!("用户 #{id} 已关联企业微信 UserID {userid}：此人已由企业微信管理，无需导入"),
            OpenUseridTaken { user_id } => format!("该 open_userid 已属于用户 #{user_id}"),
            UseridTaken { user_id } => format!("该企业微信 UserID 已属于用户 #{user_id}"),
            NoIntegration => "open_userid 需与企业的 CorpID 一起保存：请先完成设置第 2 步".into(),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.en())
    }
}

fn strip_bom(s: &str) -> &str {
    s.strip_prefix('\u{feff}').unwrap_or(s)
}

/// A row as read, before validation: (column, value) pairs.
struct RawRow {
    line: usize,
    fields: Vec<(String, String)>,
}

/// Reads and validates a whole file. Every problem is returned, each with its line;
/// rows only when there is none.
pub fn parse_import(text: &str, format: ImportFormat) -> Result<Vec<ImportRow>, Vec<ImportError>> {
    let text = strip_bom(text);
    if text.trim().is_empty() {
        return Err(vec![ImportError::new(1, ImportProblem::Empty)]);
    }
    // Rows that cannot be read (a wrong number of values, not an object) are listed
    // with the other rows' problems.
    let (raw, mut errors) = match format {
        ImportFormat::Csv => read_csv(text)?,
        ImportFormat::Json => read_json(text)?,
    };
    if raw.len() > MAX_ROWS {
        return Err(vec![ImportError::new(
            raw[MAX_ROWS].line,
            ImportProblem::TooManyRows,
        )]);
    }
    // Every row's readable values count for duplicates, valid or not.
    let mut read = Vec::with_capacity(raw.len());
    let mut valid = Vec::with_capacity(raw.len());
    for r in raw {
        let (row, mut e) = validate_row(r);
        valid.push(e.is_empty());
        errors.append(&mut e);
        read.push(row);
    }
    errors.extend(duplicates(&read));
    let rows: Vec<ImportRow> = read
        .into_iter()
        .zip(valid)
        .filter_map(|(r, ok)| ok.then_some(r))
        .collect();
    if errors.is_empty() {
        Ok(rows)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

/// CSV (RFC 4180: quotes, doubled quotes, line breaks inside quotes; `,` between
/// fields). The first record is the header.
fn read_csv(text: &str) -> Result<(Vec<RawRow>, Vec<ImportError>), Vec<ImportError>> {
    let records = csv_records(text).map_err(|e| vec![e])?;
    let mut it = records.into_iter();
    let Some((_, header)) = it.next() else {
        return Err(vec![ImportError::new(1, ImportProblem::Empty)]);
    };
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for h in &header {
        if !COLUMNS.contains(&h.as_str()) {
            errors.push(ImportError::new(1, ImportProblem::UnknownColumn(h.clone())));
        } else if !seen.insert(h.as_str()) {
            errors.push(ImportError::new(
                1,
                ImportProblem::DuplicateColumn(h.clone()),
            ));
        }
    }
    for c in ["id", "name"] {
        if !header.iter().any(|h| h == c) {
            errors.push(ImportError::new(1, ImportProblem::MissingColumn(c)));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut rows = Vec::new();
    for (line, values) in it {
        if values.len() == 1 && values[0].trim().is_empty() {
            continue; // a blank line
        }
        if values.len() != header.len() {
            errors.push(ImportError::new(
                line,
                ImportProblem::ColumnCount {
                    expected: header.len(),
                    found: values.len(),
                },
            ));
            continue;
        }
        rows.push(RawRow {
            line,
            fields: header.iter().cloned().zip(values).collect(),
        });
    }
    Ok((rows, errors))
}

/// The records of a CSV text, each with the line it starts on.
fn csv_records(text: &str) -> Result<Vec<(usize, Vec<String>)>, ImportError> {
    let mut out = Vec::new();
    let mut line = 1usize;
    let mut chars = text.chars().peekable();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut start = 1usize;
    let mut in_quotes = false;
    let mut quote_line = 0usize;
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.trim().is_empty() => {
                field.clear();
                in_quotes = true;
                quote_line = line;
            }
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                out.push((start, std::mem::take(&mut record)));
                line += 1;
                start = line;
                any = false;
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(ImportError::new(
            quote_line,
            ImportProblem::Syntax("a quoted value is not closed".into()),
        ));
    }
    if any {
        record.push(field);
        out.push((start, record));
    }
    Ok(out)
}

/// The 1-based line of byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// JSON: an array of objects, each element's line where it starts.
fn read_json(text: &str) -> Result<(Vec<RawRow>, Vec<ImportError>), Vec<ImportError>> {
    let start = text.len() - text.trim_start().len();
    if !text[start..].starts_with('[') {
        return Err(vec![ImportError::new(
            line_of(text, start),
            ImportProblem::NotAnArray,
        )]);
    }
    let syntax = |offset: usize, e: serde_json::Error| {
        // serde_json's line is relative to the slice it read.
        let line = line_of(text, offset) + e.line().saturating_sub(1);
        ImportError::new(line, ImportProblem::Syntax(e.to_string()))
    };
    let mut pos = start + 1;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut expect_value = true;
    loop {
        let rest = &text[pos..];
        let skip = rest.len() - rest.trim_start().len();
        pos += skip;
        let rest = &text[pos..];
        match rest.chars().next() {
            None => {
                return Err(vec![ImportError::new(
                    line_of(text, pos),
                    ImportProblem::Syntax("the array is not closed with ]".into()),
                )])
            }
            Some(']') => {
                pos += 1;
                break;
            }
            Some(',') if !expect_value => {
                pos += 1;
                expect_value = true;
                continue;
            }
            Some(_) if !expect_value => {
                return Err(vec![ImportError::new(
                    line_of(text, pos),
                    ImportProblem::Syntax("expected , or ] between elements".into()),
                )])
            }
            Some(_) => {}
        }
        let line = line_of(text, pos);
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
        let v = match stream.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(vec![syntax(pos, e)]),
            None => unreachable!("the rest is not empty"),
        };
        pos += stream.byte_offset();
        expect_value = false;
        let serde_json::Value::Object(map) = v else {
            errors.push(ImportError::new(line, ImportProblem::NotAnObject));
            continue;
        };
        let mut fields = Vec::with_capacity(map.len());
        let before = errors.len();
        for (k, v) in map {
            let key = k.trim().to_ascii_lowercase();
            if !COLUMNS.contains(&key.as_str()) {
                errors.push(ImportError::new(line, ImportProblem::UnknownColumn(k)));
                continue;
            }
            let value = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Null => String::new(),
                _ => {
                    errors.push(ImportError::new(line, ImportProblem::NotAValue(key)));
                    continue;
                }
            };
            fields.push((key, value));
        }
        if errors.len() == before {
            rows.push(RawRow { line, fields });
        }
    }
    if !text[pos..].trim().is_empty() {
        errors.push(ImportError::new(
            line_of(text, pos),
            ImportProblem::Syntax("text after the closing ]".into()),
        ));
    }
    Ok((rows, errors))
}

fn is_userid(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
}

fn is_open_userid(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !s.chars().any(char::is_whitespace)
        && s.len() <= 254
}

/// A mobile number as matching compares it: its digits, without China's +86 prefix.
pub fn normalize_mobile(s: &str) -> String {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix("86") {
        Some(rest) if digits.len() == 13 => rest.to_string(),
        _ => digits,
    }
}

fn is_mobile(s: &str) -> bool {
    let t = s.strip_prefix('+').unwrap_or(s);
    let digits = t.chars().filter(char::is_ascii_digit).count();
    (5..=20).contains(&digits)
        && t.chars()
            .all(|c| c.is_ascii_digit() || c == '-' || c == ' ')
}

/// A row's values as far as they are valid, and its problems.
fn validate_row(raw: RawRow) -> (ImportRow, Vec<ImportError>) {
    let line = raw.line;
    let mut errors = Vec::new();
    let mut err = |p: ImportProblem| errors.push(ImportError::new(line, p));
    let mut row = ImportRow {
        line,
        ..Default::default()
    };
    let mut get = HashMap::new();
    for (k, v) in raw.fields {
        let v = v.trim().to_string();
        if !v.is_empty() {
            get.insert(k, v);
        }
    }
    let mut take = |k: &str| get.remove(k);
    let too_long = |s: &str, max: usize| s.chars().count() > max;
    match take("id") {
        None => err(ImportProblem::Missing("id")),
        Some(v) => match v.parse::<i64>() {
            Ok(id) if id > 0 => row.id = id,
            _ => err(ImportProblem::BadId(v)),
        },
    }
    match take("name") {
        None => err(ImportProblem::Missing("name")),
        Some(v) if too_long(&v, 64) => err(ImportProblem::TooLong {
            field: "name",
            max: 64,
        }),
        Some(v) => row.name = v,
    }
    let open = take("open_userid");
    let agent = take("source_agentid");
    match (open, agent) {
        (Some(o), Some(a)) => {
            if !is_open_userid(&o) {
                err(ImportProblem::BadOpenUserid(o));
            } else {
                row.open_userid = Some(o);
            }
            match a.parse::<u32>() {
                Ok(n) if n > 0 => row.source_agentid = Some(n as i64),
                _ => err(ImportProblem::BadAgentid(a)),
            }
        }
        (Some(_), None) => err(ImportProblem::OpenUseridWithoutAgent),
        (None, Some(_)) => err(ImportProblem::AgentidWithoutOpenUserid),
        (None, None) => {}
    }
    if let Some(v) = take("userid") {
        if is_userid(&v) {
            row.userid = Some(v);
        } else {
            err(ImportProblem::BadUserid(v));
        }
    }
    if let Some(v) = take("email") {
        if is_email(&v) {
            row.email = Some(v);
        } else {
            err(ImportProblem::BadEmail(v));
        }
    }
    if let Some(v) = take("mobile") {
        if is_mobile(&v) {
            row.mobile = Some(v);
        } else {
            err(ImportProblem::BadMobile(v));
        }
    }
    if let Some(v) = take("external_key") {
        if too_long(&v, 128) {
            err(ImportProblem::TooLong {
                field: "external_key",
                max: 128,
            });
        } else {
            row.external_key = Some(v);
        }
    }
    if let Some(v) = take("notes") {
        if too_long(&v, crate::domain::user::MAX_NOTES) {
            err(ImportProblem::TooLong {
                field: "notes",
                max: crate::domain::user::MAX_NOTES,
            });
        } else {
            row.notes = Some(v);
        }
    }
    let has_key = row.open_userid.is_some()
        || row.userid.is_some()
        || row.email.is_some()
        || row.mobile.is_some()
        || row.external_key.is_some();
    if !has_key && errors.is_empty() {
        errors.push(ImportError::new(line, ImportProblem::NoKey));
    }
    (row, errors)
}

/// Ids and keys that appear on more than one row: each names one person.
fn duplicates(rows: &[ImportRow]) -> Vec<ImportError> {
    let mut errors = Vec::new();
    let mut ids: HashMap<i64, usize> = HashMap::new();
    let mut keys: HashMap<(&'static str, String), usize> = HashMap::new();
    for r in rows {
        // An id of 0 is no valid id (reported already).
        match ids.get(&r.id) {
            _ if r.id == 0 => {}
            Some(&first_line) => errors.push(ImportError::new(
                r.line,
                ImportProblem::DuplicateId { first_line },
            )),
            None => {
                ids.insert(r.id, r.line);
            }
        }
        let candidates = [
            ("open_userid", r.open_userid.clone()),
            ("userid", r.userid.as_deref().map(str::to_ascii_lowercase)),
            ("email", r.email.as_deref().map(str::to_lowercase)),
            ("mobile", r.mobile.as_deref().map(normalize_mobile)),
            ("external_key", r.external_key.clone()),
        ];
        for (field, value) in candidates {
            let Some(value) = value else { continue };
            match keys.get(&(field, value.clone())) {
                Some(&first_line) => errors.push(ImportError::new(
                    r.line,
                    ImportProblem::DuplicateKey {
                        field,
                        value,
                        first_line,
                    },
                )),
                None => {
                    keys.insert((field, value), r.line);
                }
            }
        }
    }
    errors
}

// ---------------------------------------------------------------------------------------
// Planning against the store

/// A stored user of the tenant with one of the rows' ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingUser {
    pub name: String,
    /// The WeCom userid it is linked to, if any.
    pub linked_userid: Option<String>,
}

/// What the store holds that the rows' ids and keys meet.
#[derive(Clone, Debug, Default)]
pub struct ImportContext {
    /// The tenant's users with the rows' ids.
    pub users: HashMap<i64, ExistingUser>,
    /// Of the rows' ids, those another tenant's users have.
    pub foreign_ids: HashSet<i64>,
    /// The tenant's third-party identities: open_userid → user id.
    pub open_userids: HashMap<String, i64>,
    /// The tenant's WeCom identities: userid (lower-cased) → user id.
    pub linked_userids: HashMap<String, i64>,
    /// Whether the tenant's WeCom integration is set up (its CorpID known).
    pub has_integration: bool,
}

/// One row of the preview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedRow {
    pub line: usize,
    pub id: i64,
    pub name: String,
    /// The stored name, for an update.
    pub old_name: Option<String>,
}

/// What an import would do: the dry run's answer, and what the confirm applies.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportPlan {
    pub rows: Vec<ImportRow>,
    pub create: Vec<PlannedRow>,
    pub update: Vec<PlannedRow>,
    pub errors: Vec<ImportError>,
}

impl ImportPlan {
    /// A file that could not be read, or rows that are invalid on their own.
    pub fn rejected(errors: Vec<ImportError>) -> Self {
        ImportPlan {
            errors,
            ..Default::default()
        }
    }

    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Decides, row by row, whether a person is created (a new id) or updated (an id of
/// this tenant not linked to WeCom yet), and refuses what would break an invariant: an
/// id of another tenant, a person WeCom already owns, a key another person has.
pub fn plan_import(rows: Vec<ImportRow>, ctx: &ImportContext) -> ImportPlan {
    let mut plan = ImportPlan::default();
    for r in &rows {
        let mut errs = Vec::new();
        if ctx.foreign_ids.contains(&r.id) {
            errs.push(ImportProblem::IdOfAnotherTenant(r.id));
        }
        let existing = ctx.users.get(&r.id);
        if let Some(ExistingUser {
            linked_userid: Some(u),
            ..
        }) = existing
        {
            errs.push(ImportProblem::AlreadyLinked {
                id: r.id,
                userid: u.clone(),
            });
        }
        if let Some(o) = &r.open_userid {
            if !ctx.has_integration {
                errs.push(ImportProblem::NoIntegration);
            }
            if let Some(&other) = ctx.open_userids.get(o) {
                if other != r.id {
                    errs.push(ImportProblem::OpenUseridTaken { user_id: other });
                }
            }
        }
        if let Some(u) = &r.userid {
            if let Some(&other) = ctx.linked_userids.get(&u.to_ascii_lowercase()) {
                if other != r.id {
                    errs.push(ImportProblem::UseridTaken { user_id: other });
                }
            }
        }
        if !errs.is_empty() {
            plan.errors
                .extend(errs.into_iter().map(|p| ImportError::new(r.line, p)));
            continue;
        }
        let planned = PlannedRow {
            line: r.line,
            id: r.id,
            name: r.name.clone(),
            old_name: existing.map(|e| e.name.clone()),
        };
        if existing.is_some() {
            plan.update.push(planned);
        } else {
            plan.create.push(planned);
        }
    }
    plan.rows = rows;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> Result<Vec<ImportRow>, Vec<ImportError>> {
        parse_import(text, ImportFormat::Csv)
    }

    fn problems(r: Result<Vec<ImportRow>, Vec<ImportError>>) -> Vec<(usize, ImportProblem)> {
        r.unwrap_err()
            .into_iter()
            .map(|e| (e.line, e.problem))
            .collect()
    }

    #[test]
    fn a_valid_csv_reads_every_column() {
        let rows = csv("\u{feff}id,name,open_userid,source_agentid,userid,email,mobile,external_key,notes\r\n\
             7,张三,woAAA,1000009,ZhangSan,zs@example.com,+86 138-0000-0001,E001,\"VIP, since 2019\"\r\n\
             \r\n\
             8,\"Li \"\"Si\"\"\",,,,,,E002,\"two\nlines\"\n\
             9,Wang,,,,,13800000002,,\n")
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].id, 7);
        assert_eq!(rows[0].open_userid.as_deref(), Some("woAAA"));
        assert_eq!(rows[0].source_agentid, Some(1000009));
        assert_eq!(rows[0].userid.as_deref(), Some("ZhangSan"));
        assert_eq!(rows[0].notes.as_deref(), Some("VIP, since 2019"));
        assert_eq!(rows[1].line, 4);
        assert_eq!(rows[1].name, "Li \"Si\"");
        assert_eq!(rows[1].notes.as_deref(), Some("two\nlines"));
        assert_eq!(rows[1].open_userid, None);
        // The quoted line break counts: the next row starts on line 6.
        assert_eq!(rows[2].line, 6);
        assert_eq!(rows[2].mobile.as_deref(), Some("13800000002"));
    }

    #[test]
    fn a_valid_json_reads_ids_as_numbers_or_text() {
        let rows = parse_import(
            "[\n  {\"id\": 7, \"name\": \"张三\", \"open_userid\": \"woAAA\", \"source_agentid\": \"1000009\"},\n\n  {\"id\": \"8\", \"name\": \"Li\", \"email\": \"li@example.com\", \"mobile\": null}\n]\n",
            ImportFormat::Json,
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].line, rows[0].id), (2, 7));
        assert_eq!(rows[0].source_agentid, Some(1000009));
        assert_eq!((rows[1].line, rows[1].id), (4, 8));
        assert_eq!(rows[1].mobile, None);
    }

    #[test]
    fn every_row_error_is_listed_with_its_line() {
        let text = "id,name,open_userid,source_agentid,userid,email,mobile,external_key\n\
            x,A,,,,,,k1\n\
            2,,,,,,,k2\n\
            3,C,woA,,,,,\n\
            4,D,,1000009,,,,k4\n\
            5,E,wo!bad,1000009,,,,\n\
            6,F,woB,agent,,,,\n\
            7,G,,,has space,,,\n\
            8,H,,,,not-an-email,,\n\
            9,I,,,,,12ab,\n\
            10,J,,,,,,\n\
            11,K,,,,,,k11,extra\n\
            -3,L,,,,,,k12\n";
        assert_eq!(
            problems(csv(text)),
            vec![
                (2, ImportProblem::BadId("x".into())),
                (3, ImportProblem::Missing("name")),
                (4, ImportProblem::OpenUseridWithoutAgent),
                (5, ImportProblem::AgentidWithoutOpenUserid),
                (6, ImportProblem::BadOpenUserid("wo!bad".into())),
                (7, ImportProblem::BadAgentid("agent".into())),
                (8, ImportProblem::BadUserid("has space".into())),
                (9, ImportProblem::BadEmail("not-an-email".into())),
                (10, ImportProblem::BadMobile("12ab".into())),
                (11, ImportProblem::NoKey),
                (
                    12,
                    ImportProblem::ColumnCount {
                        expected: 8,
                        found: 9
                    }
                ),
                (13, ImportProblem::BadId("-3".into())),
            ]
        );
    }

    #[test]
    fn duplicates_name_the_first_line() {
        let text = "id,name,userid,email,mobile,external_key\n\
            1,A,zhangsan,a@x.cn,13800000001,E1\n\
            1,B,ZhangSan,A@X.cn,+86 13800000001,E1\n";
        let p = problems(csv(text));
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(p.contains(&(3, ImportProblem::DuplicateId { first_line: 2 })));
        assert!(p.contains(&(
            3,
            ImportProblem::DuplicateKey {
                field: "userid",
                value: "zhangsan".into(),
                first_line: 2
            }
        )));
        assert!(p.contains(&(
            3,
            ImportProblem::DuplicateKey {
                field: "mobile",
                value: "13800000001".into(),
                first_line: 2
            }
        )));
    }

    #[test]
    fn header_problems_are_on_line_1() {
        assert_eq!(
            problems(csv("id,nom,id\n1,A\n")),
            vec![
                (1, ImportProblem::UnknownColumn("nom".into())),
                (1, ImportProblem::DuplicateColumn("id".into())),
                (1, ImportProblem::MissingColumn("name")),
            ]
        );
        assert_eq!(problems(csv("  \n")), vec![(1, ImportProblem::Empty)]);
        assert_eq!(
            problems(csv("id,name,notes\n1,A,\"open\n2,B,x\n")),
            vec![(
                2,
                ImportProblem::Syntax("a quoted value is not closed".into())
            )]
        );
    }

    #[test]
    fn json_errors_carry_lines() {
        let json = |t: &str| problems(parse_import(t, ImportFormat::Json));
        assert_eq!(json("\n{\"id\": 1}"), vec![(2, ImportProblem::NotAnArray)]);
        assert_eq!(
            json("[\n{\"id\": 1, \"name\": \"A\", \"email\": \"a@x.cn\"},\n3,\n{\"id\": 2, \"name\": \"B\", \"colour\": \"red\", \"mobile\": [1]}\n]"),
            vec![
                (3, ImportProblem::NotAnObject),
                (4, ImportProblem::UnknownColumn("colour".into())),
                (4, ImportProblem::NotAValue("mobile".into())),
            ]
        );
        let p = json("[\n{\"id\": 1,\n \"name\": }\n]");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, 3, "{p:?}");
        assert!(matches!(p[0].1, ImportProblem::Syntax(_)));
        assert!(matches!(
            json("[{\"id\": 1, \"name\": \"A\", \"userid\": \"a\"}")[0].1,
            ImportProblem::Syntax(_)
        ));
        assert!(matches!(
            json("[{\"id\": 1, \"name\": \"A\", \"userid\": \"a\"} {\"id\": 2}]")[0].1,
            ImportProblem::Syntax(_)
        ));
    }

    #[test]
    fn too_many_rows_is_refused() {
        let mut text = String::from("id,name,external_key\n");
        for i in 1..=MAX_ROWS + 1 {
            text.push_str(&format!("{i},n,k{i}\n"));
        }
        assert_eq!(
            problems(csv(&text)),
            vec![(MAX_ROWS + 2, ImportProblem::TooManyRows)]
        );
    }

    #[test]
    fn format_is_guessed_from_the_name_then_the_text() {
        assert_eq!(
            ImportFormat::guess(Some("a.JSON"), "id"),
            ImportFormat::Json
        );
        assert_eq!(ImportFormat::guess(Some("a.csv"), "[]"), ImportFormat::Csv);
        assert_eq!(
            ImportFormat::guess(None, "\u{feff} [{}]"),
            ImportFormat::Json
        );
        assert_eq!(ImportFormat::guess(None, "id,name"), ImportFormat::Csv);
    }

    #[test]
    fn mobiles_compare_by_digits() {
        assert_eq!(normalize_mobile("+86 138-0000-0001"), "13800000001");
        assert_eq!(normalize_mobile("13800000001"), "13800000001");
        assert_eq!(normalize_mobile("+1 415 555 0100"), "14155550100");
    }

    fn row(line: usize, id: i64) -> ImportRow {
        ImportRow {
            line,
            id,
            name: format!("n{id}"),
            external_key: Some(format!("k{id}")),
            ..Default::default()
        }
    }

    #[test]
    fn plan_creates_updates_and_refuses() {
        let mut ctx = ImportContext {
            has_integration: false,
            ..Default::default()
        };
        ctx.users.insert(
            2,
            ExistingUser {
                name: "old".into(),
                linked_userid: None,
            },
        );
        ctx.users.insert(
            3,
            ExistingUser {
                name: "张三".into(),
                linked_userid: Some("zhangsan".into()),
            },
        );
        ctx.foreign_ids.insert(4);
        ctx.open_userids.insert("woTaken".into(), 99);
        ctx.linked_userids.insert("lisi".into(), 98);
        let mut r5 = row(6, 5);
        r5.open_userid = Some("woTaken".into());
        r5.source_agentid = Some(1);
        let mut r6 = row(7, 6);
        r6.userid = Some("LiSi".into());
        let plan = plan_import(
            vec![row(2, 1), row(3, 2), row(4, 3), row(5, 4), r5, r6],
            &ctx,
        );
        assert_eq!(plan.create.len(), 1);
        assert_eq!(plan.create[0].id, 1);
        assert_eq!(plan.update.len(), 1);
        assert_eq!(plan.update[0].old_name.as_deref(), Some("old"));
        let errs: Vec<_> = plan
            .errors
            .iter()
            .map(|e| (e.line, e.problem.clone()))
            .collect();
        assert_eq!(
            errs,
            vec![
                (
                    4,
                    ImportProblem::AlreadyLinked {
                        id: 3,
                        userid: "zhangsan".into()
                    }
                ),
                (5, ImportProblem::IdOfAnotherTenant(4)),
                (6, ImportProblem::NoIntegration),
                (6, ImportProblem::OpenUseridTaken { user_id: 99 }),
                (7, ImportProblem::UseridTaken { user_id: 98 }),
            ]
        );
        assert!(!plan.is_valid());
        // Every message names the problem in both languages.
        for e in &plan.errors {
            assert!(!e.en().is_empty() && !e.zh().is_empty());
        }
    }
}
