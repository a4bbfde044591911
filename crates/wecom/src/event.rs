//! Parsing decrypted callback XML (§13), above all `change_contact`.
//!
//! WeCom's samples mix CDATA and bare values, put whitespace between elements and do not keep a fixed
//! element order, so everything is read by tag name from a small element tree. For the optional fields
//! of `create_user`/`update_user`/`update_party`, `None` means "not in the payload": for an update that
//! is "unchanged", while `Some("")` / `Some(vec![])` means the value was cleared.

use quick_xml::events::Event;
use quick_xml::Reader;

/// A decrypted callback: the common fields (§13.1) and what the event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackEvent {
    /// The CorpID.
    pub to_user_name: String,
    /// `sys` for change_contact; the member's userid for messages and most other events.
    pub from_user_name: String,
    /// Unix seconds (one-second resolution: not a dedup key on its own, see §12.5).
    pub create_time: u64,
    /// `event` for events, `text`, `image`, … for messages.
    pub msg_type: String,
    /// The `Event` value; absent for plain messages.
    pub event: Option<String>,
    /// `AgentID`, when the payload carries a non-empty one.
    pub agent_id: Option<u32>,
    pub kind: EventKind,
}

// Unboxed on purpose: one value per callback, so the size is irrelevant and patterns stay plain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// `Event` = `change_contact`.
    ChangeContact(ContactChange),
    /// Any other event (or a plain message, where `event` is empty); see §12.6 for the values.
    Other { event: String },
}

/// One `change_contact` change, by `ChangeType` (§13.2).
#[allow(clippy::large_enum_variant)] // see EventKind
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactChange {
    CreateUser(UserChange),
    /// `user_id` is the id **before** the change; `new_user_id` is set when the userid changed.
    UpdateUser(UserChange),
    DeleteUser {
        user_id: String,
    },
    CreateParty(PartyChange),
    UpdateParty(PartyChange),
    DeleteParty {
        id: u32,
    },
    UpdateTag(TagChange),
    /// A `ChangeType` this crate does not know; re-read the directory to catch up.
    Unknown {
        change_type: String,
    },
}

/// Member fields of `create_user` / `update_user`. Every optional field is `None` when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChange {
    pub user_id: String,
    /// Only on `update_user`, and only when the userid changed.
    pub new_user_id: Option<String>,
    pub name: Option<String>,
    /// Visible departments only; `Some(vec![])` when the member left every visible department.
    pub department: Option<Vec<u32>>,
    pub main_department: Option<u32>,
    /// 0/1 per entry, parallel to `department`.
    pub is_leader_in_dept: Option<Vec<u8>>,
    /// The callback doc allows up to 5 (user/get now says 1); all given ids are kept.
    pub direct_leader: Option<Vec<String>>,
    pub position: Option<String>,
    pub mobile: Option<String>,
    /// 0 unknown, 1 male, 2 female.
    pub gender: Option<u8>,
    pub email: Option<String>,
    pub biz_mail: Option<String>,
    /// 1 active, 2 disabled, 4 not activated, 5 left the company.
    pub status: Option<u8>,
    pub avatar: Option<String>,
    pub alias: Option<String>,
    pub telephone: Option<String>,
    pub address: Option<String>,
    pub ext_attr: Option<Vec<ExtAttr>>,
}

/// One `<ExtAttr><Item>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtAttr {
    pub name: String,
    pub value: ExtAttrValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtAttrValue {
    /// Type 0: `<Text><Value>`.
    Text { value: String },
    /// Type 1: `<Web><Title><Url>`.
    Web { title: String, url: String },
    /// Any other type (e.g. 2, mini program, in user/get); kept so the item is not lost.
    Other { attr_type: u32 },
}

/// Department fields of `create_party` / `update_party`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartyChange {
    pub id: u32,
    pub name: Option<String>,
    pub parent_id: Option<u32>,
    pub order: Option<u32>,
}

/// `update_tag`: the lists WeCom omits are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagChange {
    pub tag_id: u32,
    pub add_user_items: Vec<String>,
    pub del_user_items: Vec<String>,
    pub add_party_items: Vec<u32>,
    pub del_party_items: Vec<u32>,
}

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum EventParseError {
    #[error("callback XML is malformed: {0}")]
    Xml(String),
    #[error("callback XML lacks the <{0}> element")]
    MissingField(&'static str),
    #[error("callback XML has an invalid <{field}> value {value:?}")]
    InvalidField { field: &'static str, value: String },
}

/// Parses a decrypted callback payload (the plaintext of `<Encrypt>`).
pub fn parse_event(xml: &str) -> Result<CallbackEvent, EventParseError> {
    let root = parse_tree(xml).map_err(EventParseError::Xml)?;
    let event = root.text_of("Event").map(str::to_owned);
    let agent_id = match root.text_of("AgentID").map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(parse_num(v, "AgentID")?),
    };
    let kind = match event.as_deref() {
        Some("change_contact") => EventKind::ChangeContact(parse_change(&root)?),
        other => EventKind::Other {
            event: other.unwrap_or_default().to_owned(),
        },
    };
    Ok(CallbackEvent {
        to_user_name: required(&root, "ToUserName")?.to_owned(),
        from_user_name: required(&root, "FromUserName")?.to_owned(),
        create_time: parse_num(required(&root, "CreateTime")?, "CreateTime")?,
        msg_type: required(&root, "MsgType")?.to_owned(),
        event,
        agent_id,
        kind,
    })
}

fn parse_change(root: &Node) -> Result<ContactChange, EventParseError> {
    let change_type = required(root, "ChangeType")?;
    Ok(match change_type.trim() {
        "create_user" => ContactChange::CreateUser(parse_user(root)?),
        "update_user" => ContactChange::UpdateUser(parse_user(root)?),
        "delete_user" => ContactChange::DeleteUser {
            user_id: required(root, "UserID")?.to_owned(),
        },
        "create_party" => ContactChange::CreateParty(parse_party(root)?),
        "update_party" => ContactChange::UpdateParty(parse_party(root)?),
        "delete_party" => ContactChange::DeleteParty {
            id: parse_num(required(root, "Id")?, "Id")?,
        },
        "update_tag" => ContactChange::UpdateTag(TagChange {
            tag_id: parse_num(required(root, "TagId")?, "TagId")?,
            add_user_items: opt_list(root, "AddUserItems", ok_string)?.unwrap_or_default(),
            del_user_items: opt_list(root, "DelUserItems", ok_string)?.unwrap_or_default(),
            add_party_items: opt_list(root, "AddPartyItems", parse_num)?.unwrap_or_default(),
            del_party_items: opt_list(root, "DelPartyItems", parse_num)?.unwrap_or_default(),
        }),
        _ => ContactChange::Unknown {
            change_type: change_type.to_owned(),
        },
    })
}

fn parse_user(root: &Node) -> Result<UserChange, EventParseError> {
    let s = |name: &str| root.text_of(name).map(str::to_owned);
    Ok(UserChange {
        user_id: required(root, "UserID")?.to_owned(),
        new_user_id: s("NewUserID"),
        name: s("Name"),
        department: opt_list(root, "Department", parse_num)?,
        main_department: opt_num(root, "MainDepartment")?,
        is_leader_in_dept: opt_list(root, "IsLeaderInDept", parse_num)?,
        direct_leader: opt_list(root, "DirectLeader", ok_string)?,
        position: s("Position"),
        mobile: s("Mobile"),
        gender: opt_num(root, "Gender")?,
        email: s("Email"),
        biz_mail: s("BizMail"),
        status: opt_num(root, "Status")?,
        avatar: s("Avatar"),
        alias: s("Alias"),
        telephone: s("Telephone"),
        address: s("Address"),
        ext_attr: root.child("ExtAttr").map(parse_ext_attr).transpose()?,
    })
}

fn parse_ext_attr(node: &Node) -> Result<Vec<ExtAttr>, EventParseError> {
    node.children
        .iter()
        .filter(|c| c.name == "Item")
        .map(|item| {
            let text = |n: &Node, name: &str| n.text_of(name).unwrap_or_default().to_owned();
            // Type may be missing in hand-written payloads: infer it from the child that is present.
            let attr_type: u32 = match item.text_of("Type").map(str::trim) {
                Some(t) if !t.is_empty() => parse_num(t, "ExtAttr/Item/Type")?,
                _ if item.child("Web").is_some() => 1,
                _ => 0,
            };
            let value = match attr_type {
                0 => ExtAttrValue::Text {
                    value: item
                        .child("Text")
                        .map(|t| text(t, "Value"))
                        .unwrap_or_default(),
                },
                1 => {
                    let web = item.child("Web");
                    ExtAttrValue::Web {
                        title: web.map(|w| text(w, "Title")).unwrap_or_default(),
                        url: web.map(|w| text(w, "Url")).unwrap_or_default(),
                    }
                }
                other => ExtAttrValue::Other { attr_type: other },
            };
            Ok(ExtAttr {
                name: text(item, "Name"),
                value,
            })
        })
        .collect()
}

fn parse_party(root: &Node) -> Result<PartyChange, EventParseError> {
    Ok(PartyChange {
        id: parse_num(required(root, "Id")?, "Id")?,
        name: root.text_of("Name").map(str::to_owned),
        parent_id: opt_num(root, "ParentId")?,
        order: opt_num(root, "Order")?,
    })
}

fn required<'a>(root: &'a Node, name: &'static str) -> Result<&'a str, EventParseError> {
    root.text_of(name)
        .ok_or(EventParseError::MissingField(name))
}

fn parse_num<T: std::str::FromStr>(value: &str, field: &'static str) -> Result<T, EventParseError> {
    value
        .trim()
        .parse()
        .map_err(|_| EventParseError::InvalidField {
            field,
            value: value.to_owned(),
        })
}

fn ok_string(value: &str, _field: &'static str) -> Result<String, EventParseError> {
    Ok(value.to_owned())
}

fn opt_num<T: std::str::FromStr>(
    root: &Node,
    name: &'static str,
) -> Result<Option<T>, EventParseError> {
    root.text_of(name).map(|v| parse_num(v, name)).transpose()
}

/// A comma-separated list; an empty element is `Some(vec![])`. Items are trimmed and empty items
/// (a trailing comma) skipped.
fn opt_list<T>(
    root: &Node,
    name: &'static str,
    item: fn(&str, &'static str) -> Result<T, EventParseError>,
) -> Result<Option<Vec<T>>, EventParseError> {
    root.text_of(name)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| item(s, name))
                .collect()
        })
        .transpose()
}

/// A minimal element tree: enough for WeCom's flat payloads, without pulling in a DOM crate.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub(crate) name: String,
    /// The element's own text: bare text (unescaped, trimmed) and CDATA (verbatim), concatenated.
    pub(crate) text: String,
    pub(crate) children: Vec<Node>,
}

impl Node {
    /// The first child element with this name.
    pub(crate) fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub(crate) fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

/// Nesting deeper than this is not WeCom XML; refusing it bounds memory on hostile input.
const MAX_DEPTH: usize = 16;

/// Parses a document into its root element. Comments, processing instructions and the declaration are
/// skipped; a DOCTYPE is refused (WeCom never sends one, and entity tricks start there).
pub(crate) fn parse_tree(xml: &str) -> Result<Node, String> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.error_position()))?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err("content after the root element".into());
            }
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err("elements nested too deeply".into());
                }
                stack.push(Node {
                    name: element_name(start.name().as_ref())?,
                    ..Node::default()
                });
            }
            Event::Empty(start) => {
                let node = Node {
                    name: element_name(start.name().as_ref())?,
                    ..Node::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::End(_) => {
                // quick-xml checks that end names match their start.
                let node = stack.pop().ok_or("unexpected end tag")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(text) => {
                let text = text.unescape().map_err(|e| e.to_string())?;
                let trimmed = text.trim();
                match stack.last_mut() {
                    Some(node) => node.text.push_str(trimmed),
                    None if trimmed.is_empty() => {}
                    None => return Err("text outside the root element".into()),
                }
            }
            Event::CData(cdata) => {
                let cdata = cdata.decode().map_err(|e| e.to_string())?;
                match stack.last_mut() {
                    Some(node) => node.text.push_str(&cdata),
                    None => return Err("CDATA outside the root element".into()),
                }
            }
            Event::DocType(_) => return Err("DOCTYPE is not allowed".into()),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err("unexpected end of document".into());
    }
    root.ok_or_else(|| "no root element".into())
}

fn element_name(raw: &[u8]) -> Result<String, String> {
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| "element name is not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "<ToUserName><![CDATA[wwcorp0001]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>";

    fn change(xml: &str) -> ContactChange {
        match parse_event(xml).expect("parses").kind {
            EventKind::ChangeContact(c) => c,
            other => panic!("not change_contact: {other:?}"),
        }
    }

    #[test]
    fn sample_create_user() {
        let xml = "<xml><ToUserName><![CDATA[wwcorp0001]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1732400000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[create_user]]></ChangeType><UserID><![CDATA[lisi]]></UserID><Name><![CDATA[李四]]></Name><Department><![CDATA[2,5]]></Department><MainDepartment>2</MainDepartment><IsLeaderInDept><![CDATA[0,1]]></IsLeaderInDept><Position><![CDATA[工程师]]></Position><Status>1</Status><Alias><![CDATA[li4]]></Alias></xml>";
        let ev = parse_event(xml).unwrap();
        assert_eq!(ev.to_user_name, "wwcorp0001");
        assert_eq!(ev.from_user_name, "sys");
        assert_eq!(ev.create_time, 1732400000);
        assert_eq!(ev.msg_type, "event");
        assert_eq!(ev.event.as_deref(), Some("change_contact"));
        assert_eq!(ev.agent_id, None);
        assert_eq!(
            ev.kind,
            EventKind::ChangeContact(ContactChange::CreateUser(UserChange {
                user_id: "lisi".into(),
                name: Some("李四".into()),
                department: Some(vec![2, 5]),
                main_department: Some(2),
                is_leader_in_dept: Some(vec![0, 1]),
                position: Some("工程师".into()),
                status: Some(1),
                alias: Some("li4".into()),
                ..UserChange::default()
            }))
        );
    }

    #[test]
    fn sample_update_user() {
        let xml = "<xml><ToUserName><![CDATA[wwcorp0001]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1732400060</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[update_user]]></ChangeType><UserID><![CDATA[lisi]]></UserID><NewUserID><![CDATA[li.si]]></NewUserID><Department><![CDATA[2,7]]></Department></xml>";
        assert_eq!(
            change(xml),
            ContactChange::UpdateUser(UserChange {
                user_id: "lisi".into(),
                new_user_id: Some("li.si".into()),
                department: Some(vec![2, 7]),
                ..UserChange::default()
            })
        );
    }

    #[test]
    fn sample_delete_user() {
        let xml = "<xml><ToUserName><![CDATA[wwcorp0001]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1732400120</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[delete_user]]></ChangeType><UserID><![CDATA[li.si]]></UserID></xml>";
        assert_eq!(
            change(xml),
            ContactChange::DeleteUser {
                user_id: "li.si".into()
            }
        );
    }

    #[test]
    fn sample_create_party() {
        let xml = "<xml><ToUserName><![CDATA[wwcorp0001]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1732400180</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[create_party]]></ChangeType><Id>7</Id><Name><![CDATA[研发二组]]></Name><ParentId>2</ParentId><Order>100</Order></xml>";
        assert_eq!(
            change(xml),
            ContactChange::CreateParty(PartyChange {
                id: 7,
                name: Some("研发二组".into()),
                parent_id: Some(2),
                order: Some(100),
            })
        );
    }

    #[test]
    fn sample_update_party() {
        let xml = "<xml><ToUserName><![CDATA[wwcorp0001]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1732400240</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[update_party]]></ChangeType><Id>7</Id><ParentId>5</ParentId></xml>";
        assert_eq!(
            change(xml),
            ContactChange::UpdateParty(PartyChange {
                id: 7,
                parent_id: Some(5),
                ..PartyChange::default()
            })
        );
    }

    #[test]
    fn sample_delete_party() {
        let xml = "<xml><ToUserName><![CDATA[wwcorp0001]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1732400300</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[delete_party]]></ChangeType><Id>7</Id></xml>";
        assert_eq!(change(xml), ContactChange::DeleteParty { id: 7 });
    }

    #[test]
    fn sample_update_tag() {
        let xml = "<xml><ToUserName><![CDATA[wwcorp0001]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1732400360</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[update_tag]]></ChangeType><TagId>3</TagId><AddUserItems><![CDATA[lisi,wangwu]]></AddUserItems><DelPartyItems><![CDATA[5]]></DelPartyItems></xml>";
        assert_eq!(
            change(xml),
            ContactChange::UpdateTag(TagChange {
                tag_id: 3,
                add_user_items: vec!["lisi".into(), "wangwu".into()],
                del_party_items: vec![5],
                ..TagChange::default()
            })
        );
    }

    #[test]
    fn vector_e1_plaintext() {
        // §14 E1: the computed change_contact vector's plaintext.
        let xml = "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[delete_user]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID></xml>";
        assert_eq!(
            change(xml),
            ContactChange::DeleteUser {
                user_id: "zhangsan".into()
            }
        );
    }

    #[test]
    fn bare_values_whitespace_and_any_order() {
        let xml = "<?xml version=\"1.0\"?>\n<xml>\n  <UserID>lisi</UserID>\n  <ChangeType>update_user</ChangeType>\n  <Event>change_contact</Event>\n  <!-- reordered -->\n  <MsgType>event</MsgType>\n  <CreateTime> 1732400060 </CreateTime>\n  <FromUserName>sys</FromUserName>\n  <ToUserName>wwcorp0001</ToUserName>\n  <Department>\n    <![CDATA[2, 7]]>\n  </Department>\n  <Name>A &amp; B</Name>\n  <AgentID>1000002</AgentID>\n</xml>\n";
        let ev = parse_event(xml).unwrap();
        assert_eq!(ev.create_time, 1732400060);
        assert_eq!(ev.agent_id, Some(1000002));
        assert_eq!(
            ev.kind,
            EventKind::ChangeContact(ContactChange::UpdateUser(UserChange {
                user_id: "lisi".into(),
                department: Some(vec![2, 7]),
                name: Some("A & B".into()),
                ..UserChange::default()
            }))
        );
    }

    #[test]
    fn empty_department_means_no_visible_department() {
        for dept in [
            "<Department></Department>",
            "<Department/>",
            "<Department><![CDATA[]]></Department>",
        ] {
            let xml = format!("<xml>{HEAD}<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>change_contact</Event><ChangeType>update_user</ChangeType><UserID>lisi</UserID>{dept}<Position><![CDATA[]]></Position></xml>");
            let ContactChange::UpdateUser(u) = change(&xml) else {
                panic!("not update_user")
            };
            assert_eq!(u.department, Some(vec![]), "{dept}");
            assert_eq!(u.position, Some(String::new()), "cleared, not absent");
            assert_eq!(u.name, None);
        }
    }

    #[test]
    fn all_user_fields_and_ext_attr() {
        let xml = format!(
            "<xml>{HEAD}<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>change_contact</Event><ChangeType>create_user</ChangeType>\
             <UserID>zhangsan</UserID><Name>张三</Name><Department>1,2,3</Department><MainDepartment>1</MainDepartment>\
             <IsLeaderInDept>1,0,0</IsLeaderInDept><DirectLeader><![CDATA[a,b,c,d,e]]></DirectLeader><Position>产品经理</Position>\
             <Mobile>13800000000</Mobile><Gender>1</Gender><Email>zhangsan@example.com</Email><BizMail>zs@corp.example.com</BizMail>\
             <Status>1</Status><Avatar>http://wx.qlogo.cn/x</Avatar><Alias>zs</Alias><Telephone>020-123456</Telephone>\
             <Address>广州市</Address><ExtAttr><Item><Name><![CDATA[爱好]]></Name><Type>0</Type><Text><Value><![CDATA[旅游]]></Value></Text></Item>\
             <Item><Name><![CDATA[卡号]]></Name><Type>1</Type><Web><Title><![CDATA[企业微信]]></Title><Url><![CDATA[https://work.weixin.qq.com]]></Url></Web></Item>\
             <Item><Name>小程序</Name><Type>2</Type></Item></ExtAttr></xml>"
        );
        let ContactChange::CreateUser(u) = change(&xml) else {
            panic!("not create_user")
        };
        assert_eq!(
            u,
            UserChange {
                user_id: "zhangsan".into(),
                new_user_id: None,
                name: Some("张三".into()),
                department: Some(vec![1, 2, 3]),
                main_department: Some(1),
                is_leader_in_dept: Some(vec![1, 0, 0]),
                direct_leader: Some(["a", "b", "c", "d", "e"].map(String::from).to_vec()),
                position: Some("产品经理".into()),
                mobile: Some("13800000000".into()),
                gender: Some(1),
                email: Some("zhangsan@example.com".into()),
                biz_mail: Some("zs@corp.example.com".into()),
                status: Some(1),
                avatar: Some("http://wx.qlogo.cn/x".into()),
                alias: Some("zs".into()),
                telephone: Some("020-123456".into()),
                address: Some("广州市".into()),
                ext_attr: Some(vec![
                    ExtAttr {
                        name: "爱好".into(),
                        value: ExtAttrValue::Text {
                            value: "旅游".into()
                        }
                    },
                    ExtAttr {
                        name: "卡号".into(),
                        value: ExtAttrValue::Web {
                            title: "企业微信".into(),
                            url: "https://work.weixin.qq.com".into()
                        }
                    },
                    ExtAttr {
                        name: "小程序".into(),
                        value: ExtAttrValue::Other { attr_type: 2 }
                    },
                ]),
            }
        );
    }

    #[test]
    fn update_tag_all_lists() {
        let xml = format!("<xml>{HEAD}<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>change_contact</Event><ChangeType>update_tag</ChangeType><TagId>9</TagId><AddUserItems>a</AddUserItems><DelUserItems>b,c</DelUserItems><AddPartyItems>1,2</AddPartyItems><DelPartyItems>3</DelPartyItems></xml>");
        assert_eq!(
            change(&xml),
            ContactChange::UpdateTag(TagChange {
                tag_id: 9,
                add_user_items: vec!["a".into()],
                del_user_items: vec!["b".into(), "c".into()],
                add_party_items: vec![1, 2],
                del_party_items: vec![3],
            })
        );
    }

    #[test]
    fn unknown_change_type_and_other_events() {
        let xml = format!("<xml>{HEAD}<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>change_contact</Event><ChangeType>merge_users</ChangeType></xml>");
        assert_eq!(
            change(&xml),
            ContactChange::Unknown {
                change_type: "merge_users".into()
            }
        );
        let xml = format!("<xml>{HEAD}<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>subscribe</Event><AgentID>1000002</AgentID></xml>");
        let ev = parse_event(&xml).unwrap();
        assert_eq!(
            ev.kind,
            EventKind::Other {
                event: "subscribe".into()
            }
        );
        assert_eq!(ev.agent_id, Some(1000002));
        // A plain message (vector A's plaintext) has no Event.
        let xml = "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName><CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>";
        let ev = parse_event(xml).unwrap();
        assert_eq!(ev.event, None);
        assert_eq!(ev.msg_type, "text");
        assert_eq!(
            ev.kind,
            EventKind::Other {
                event: String::new()
            }
        );
    }

    #[test]
    fn errors() {
        let missing = format!("<xml>{HEAD}<MsgType>event</MsgType></xml>");
        assert_eq!(
            parse_event(&missing),
            Err(EventParseError::MissingField("CreateTime"))
        );
        let no_change_type = format!(
            "<xml>{HEAD}<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>change_contact</Event></xml>"
        );
        assert_eq!(
            parse_event(&no_change_type),
            Err(EventParseError::MissingField("ChangeType"))
        );
        let bad_dept = format!("<xml>{HEAD}<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>change_contact</Event><ChangeType>update_user</ChangeType><UserID>u</UserID><Department>2,x</Department></xml>");
        assert!(matches!(
            parse_event(&bad_dept),
            Err(EventParseError::InvalidField {
                field: "Department",
                ..
            })
        ));
        let bad_time =
            format!("<xml>{HEAD}<CreateTime>-5</CreateTime><MsgType>event</MsgType></xml>");
        assert!(matches!(
            parse_event(&bad_time),
            Err(EventParseError::InvalidField {
                field: "CreateTime",
                ..
            })
        ));
        for bad in [
            "",
            "not xml",
            "<xml><a></b></xml>",
            "<xml><a>",
            "<xml/><xml/>",
            "<!DOCTYPE x [<!ENTITY e \"boom\">]><xml>&e;</xml>",
        ] {
            assert!(
                matches!(parse_event(bad), Err(EventParseError::Xml(_))),
                "{bad:?} → {:?}",
                parse_event(bad)
            );
        }
        let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
        assert!(matches!(parse_event(&deep), Err(EventParseError::Xml(_))));
    }
}
