//! Deterministic synthetic org generator (`wecom-sim generate`).
//!
//! One seed gives one org, byte for byte: everything comes from a seeded `StdRng`, in a
//! fixed order, with integer or plain float arithmetic only (no HashMap iteration, no
//! transcendental functions whose last bit could differ between platforms).
//!
//! Shape: a department tree of depth ≤ 8 whose subtrees and member counts are skewed like
//! a real company's; Chinese names with pinyin userids; ~12% of members in two or more
//! departments; one or two leaders per staffed department and at most one direct leader
//! per member; mostly active members; every sensitive field filled; tags with members
//! and some with departments; one self-built app (agentid 1000002) seeing the whole org.

use crate::model::{status, App, Department, ExtAttr, Member, Scope, Tag};
use crate::scenario::{CorpSpec, Scenario};
use rand::rngs::StdRng;
use rand::seq::{index, SliceRandom};
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashMap};

/// What to generate. `departments` counts the root, so at least 1 is made.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub members: usize,
    pub departments: usize,
    pub tags: usize,
    pub seed: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            members: 200,
            departments: 20,
            tags: 10,
            seed: 1,
        }
    }
}

/// The agentid of the generated self-built app.
pub const APP_AGENTID: u32 = 1_000_002;
/// WeCom allows 15 levels; real orgs rarely use more than 8.
const MAX_DEPTH: u32 = 8;
const ROOT_ORDER: u32 = 100_000_000;

pub fn generate(opts: &GenerateOptions) -> Scenario {
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let corpid = format!("ww{:016x}", rng.gen::<u64>());
    let corp_name = format!(
        "{}{}",
        COMPANY_WORDS.choose(&mut rng).copied().unwrap_or("星河"),
        COMPANY_KINDS.choose(&mut rng).copied().unwrap_or("科技")
    );
    let tree = build_tree(&mut rng, opts.departments.max(1), &corp_name);
    let mut members = build_members(&mut rng, &tree, opts.members);
    let mut departments = tree.departments;
    assign_leaders(&mut rng, &mut departments, &tree.parent, &mut members);
    let tags = build_tags(&mut rng, &departments, &members, opts.tags);

    let mut app = App::new(APP_AGENTID, "统一工作台", &secret(&mut rng));
    app.description = "wecom-bridge 演示应用".into();
    app.scope = Scope {
        users: Vec::new(),
        parties: vec![1],
        tags: Vec::new(),
    };
    // The app counts as created after 2022-06-20, so 企业可信IP applies: trust the local
    // machine so a demo on one host works out of the box.
    app.trusted_ips = vec!["127.0.0.1".into(), "::1".into()];
    let contact_sync_secret = Some(secret(&mut rng));

    Scenario {
        settings: Default::default(),
        corps: vec![CorpSpec {
            corpid,
            name: corp_name,
            contact_sync_secret,
            departments,
            members,
            tags,
            apps: vec![app],
            provider_apps: Vec::new(),
            outsiders: vec![format!("o{}", alnum(&mut rng, 27))],
        }],
    }
}

/// Departments in id order (BFS), with each one's parent index, depth and a leaf flag.
struct Tree {
    departments: Vec<Department>,
    /// Index of the parent (the root points at itself).
    parent: Vec<usize>,
    depth: Vec<u32>,
    leaf: Vec<bool>,
}

/// Splits the department budget top-down: a node with budget b (departments still to
/// place below it) gets about b^(1/levels-left) children, and the rest of its budget is
/// shared among them with skewed weights, so some subtrees are big and deep and others
/// stop early.
fn build_tree(rng: &mut StdRng, n: usize, corp_name: &str) -> Tree {
    let max_depth = depth_for(n);
    let mut t = Tree {
        departments: vec![Department {
            id: 1,
            name: corp_name.to_string(),
            name_en: String::new(),
            parentid: 0,
            order: ROOT_ORDER,
            leaders: Vec::new(),
        }],
        parent: vec![0],
        depth: vec![1],
        leaf: vec![true],
    };
    // Each subtree carries its own depth limit: some branches stay flat.
    let mut queue = std::collections::VecDeque::from([(0usize, n - 1, max_depth)]);
    while let Some((node, budget, max_depth)) = queue.pop_front() {
        if budget == 0 {
            continue;
        }
        let depth = t.depth[node];
        let levels_left = max_depth.saturating_sub(depth).max(1);
        let fanout = if levels_left == 1 {
            budget
        } else {
            let base = int_root_ceil(budget, levels_left);
            // ×0.6 … ×1.8, in tenths.
            ((base * rng.gen_range(6..=18) + 5) / 10).clamp(1, budget)
        };
        let names = sibling_names(rng, depth + 1, fanout);
        let weights: Vec<u64> = (0..fanout).map(|_| 1 + skewed(rng, 1000) as u64).collect();
        let shares = split(budget - fanout, &weights);
        t.leaf[node] = false;
        for (i, (name, share)) in names.into_iter().zip(shares).enumerate() {
            let idx = t.departments.len();
            t.departments.push(Department {
                id: idx as u32 + 1,
                name,
                name_en: String::new(),
                parentid: t.departments[node].id,
                order: ROOT_ORDER - (i as u32).min(99_999) * 1000,
                leaders: Vec::new(),
            });
            t.parent.push(node);
            t.depth.push(depth + 1);
            t.leaf.push(true);
            let child_max = if depth + 2 < max_depth && rng.gen_range(0..100) < 35 {
                max_depth - rng.gen_range(1..=2)
            } else {
                max_depth
            };
            queue.push_back((idx, share, child_max));
        }
    }
    t
}

/// Depth limit by size: ~3.5 children per level, between 2 and [`MAX_DEPTH`].
fn depth_for(n: usize) -> u32 {
    let mut depth = 1;
    let mut reach = 1usize;
    while reach < n && depth < MAX_DEPTH {
        reach = reach.saturating_mul(7) / 2;
        depth += 1;
    }
    depth.max(2)
}

/// The smallest f with f^k ≥ b.
fn int_root_ceil(b: usize, k: u32) -> usize {
    let mut f = 1usize;
    while f.checked_pow(k).is_some_and(|p| p < b) {
        f += 1;
    }
    f
}

/// Splits `total` proportionally to `weights` (largest remainders first, ties by index).
fn split(total: usize, weights: &[u64]) -> Vec<usize> {
    let sum: u64 = weights.iter().sum::<u64>().max(1);
    let total = total as u64;
    let mut shares: Vec<usize> = weights.iter().map(|w| (total * w / sum) as usize).collect();
    let mut rest = total as usize - shares.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse((total * weights[i]) % sum));
    for i in order {
        if rest == 0 {
            break;
        }
        shares[i] += 1;
        rest -= 1;
    }
    shares
}

/// A skewed integer in 0..max: the product of three uniforms (median ≈ 0.09·max).
fn skewed(rng: &mut StdRng, max: usize) -> usize {
    let p = rng.gen::<f64>() * rng.gen::<f64>() * rng.gen::<f64>();
    ((p * max as f64) as usize).min(max.saturating_sub(1))
}

/// Unique names for `count` siblings at `depth`.
fn sibling_names(rng: &mut StdRng, depth: u32, count: usize) -> Vec<String> {
    let pool: &[&str] = match depth {
        2 => LEVEL2,
        3 => LEVEL3,
        _ => LEVEL4,
    };
    let mut picked: Vec<&str> = pool.to_vec();
    picked.shuffle(rng);
    (0..count)
        .map(|i| match picked.get(i) {
            Some(n) => n.to_string(),
            None => format!("第{}组", i + 1),
        })
        .collect()
}

fn build_members(rng: &mut StdRng, tree: &Tree, n: usize) -> Vec<Member> {
    // Skewed staffing: leaves carry most people, the root only a few.
    let weights: Vec<u64> = (0..tree.departments.len())
        .map(|i| {
            let w = 1 + skewed(rng, 1000) as u64;
            if i == 0 {
                1
            } else if tree.leaf[i] {
                w * 4
            } else {
                w
            }
        })
        .collect();
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut acc = 0u64;
    for w in &weights {
        acc += w;
        cumulative.push(acc);
    }
    let pick = |rng: &mut StdRng| -> usize {
        let x = rng.gen_range(0..acc);
        cumulative.partition_point(|&c| c <= x)
    };

    let mut taken: HashMap<String, u32> = HashMap::with_capacity(n);
    let mobile_offset = rng.gen_range(0..100_000_000u64);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (name, pinyin) = person_name(rng);
        let userid = {
            let seen = taken.entry(pinyin.clone()).or_insert(0);
            *seen += 1;
            if *seen == 1 {
                pinyin
            } else {
                format!("{pinyin}{seen}")
            }
        };
        let main = pick(rng);
        let mut depts = vec![main];
        // ~12% belong to more than one department; a few to many (WeCom allows 20).
        if rng.gen_range(0..100) < 12 && tree.departments.len() > 1 {
            let extra = match rng.gen_range(0..100) {
                0..=69 => 1,
                70..=94 => 2,
                _ => rng.gen_range(3..=6),
            };
            for _ in 0..extra * 3 {
                if depts.len() > extra || depts.len() >= 20 {
                    break;
                }
                let d = pick(rng);
                if !depts.contains(&d) {
                    depts.push(d);
                }
            }
        }
        let ids: Vec<u32> = depts.iter().map(|&d| tree.departments[d].id).collect();
        // Member::new makes the first department the main one.
        let mut m = Member::new(&userid, &name, &ids);
        m.position = POSITIONS
            .choose(rng)
            .copied()
            .unwrap_or("工程师")
            .to_string();
        let prefix = MOBILE_PREFIXES.choose(rng).copied().unwrap_or("138");
        // i·7919 mod 10^8 is a bijection on i < 10^8: mobiles never collide.
        let suffix = (i as u64 * 7919 + mobile_offset) % 100_000_000;
        m.mobile = format!("{prefix}{suffix:08}");
        m.gender = match rng.gen_range(0..100) {
            0..=1 => 0,
            2..=50 => 1,
            _ => 2,
        };
        m.email = format!("{userid}@mail.example.com");
        m.biz_mail = format!("{userid}@example.cn");
        let tag = rng.gen::<u64>();
        m.avatar = format!("https://wework.qpic.cn/wwhead/sim{tag:016x}/0");
        m.qr_code = format!("https://open.work.weixin.qq.com/wwopen/userQRCode?vcode=vc{tag:016x}");
        if rng.gen_range(0..100) < 30 {
            m.telephone = format!(
                "{}-{}",
                AREA_CODES.choose(rng).copied().unwrap_or("010"),
                rng.gen_range(20_000_000..90_000_000u32)
            );
        }
        if rng.gen_range(0..100) < 20 {
            m.alias = ALIASES.choose(rng).copied().unwrap_or("Alex").to_string();
        }
        m.address = format!(
            "{}{}路{}号",
            CITIES.choose(rng).copied().unwrap_or("北京市朝阳区"),
            ROADS.choose(rng).copied().unwrap_or("建国"),
            rng.gen_range(1..=999)
        );
        m.extattr = vec![ExtAttr {
            name: "工号".into(),
            text: Some(format!("E{:06}", i + 1)),
            web_url: None,
            web_title: None,
        }];
        m.status = match rng.gen_range(0..1000) {
            0..=949 => status::ACTIVE,
            950..=974 => status::DISABLED,
            _ => status::UNACTIVATED,
        };
        out.push(m);
    }
    out
}

/// Chinese name and its toneless pinyin (the userid stem).
fn person_name(rng: &mut StdRng) -> (String, String) {
    // Common surnames come first in the list: favour them.
    let si = (rng.gen::<f64>() * rng.gen::<f64>() * SURNAMES.len() as f64) as usize;
    let (s, s_py) = SURNAMES[si.min(SURNAMES.len() - 1)];
    let mut name = s.to_string();
    let mut py = s_py.to_string();
    let chars = if rng.gen_range(0..100) < 70 { 2 } else { 1 };
    for _ in 0..chars {
        let (g, g_py) = GIVEN[rng.gen_range(0..GIVEN.len())];
        name.push_str(g);
        py.push_str(g_py);
    }
    (name, py)
}

/// One leader per staffed department (two in some large ones), a position to match, and
/// each member's single direct leader: the nearest leader above them who is not themselves.
fn assign_leaders(
    rng: &mut StdRng,
    departments: &mut [Department],
    parent: &[usize],
    members: &mut [Member],
) {
    // Department ids are 1..=n in index order.
    let mut staff: Vec<Vec<usize>> = vec![Vec::new(); departments.len()];
    for (mi, m) in members.iter().enumerate() {
        for md in &m.departments {
            staff[md.id as usize - 1].push(mi);
        }
    }
    let mut leader_of: Vec<Option<usize>> = vec![None; departments.len()];
    for (di, people) in staff.iter().enumerate() {
        if people.is_empty() {
            continue;
        }
        let count = if people.len() >= 8 && rng.gen_range(0..100) < 15 {
            2
        } else {
            1
        };
        let chosen = index::sample(rng, people.len(), count.min(people.len()));
        for ci in chosen.iter() {
            let mi = people[ci];
            let dept_id = departments[di].id;
            let m = &mut members[mi];
            if let Some(md) = m.departments.iter_mut().find(|md| md.id == dept_id) {
                md.leader = true;
                md.order = 10_000;
            }
            m.position = leader_title(di, parent).to_string();
            m.external_position = m.position.clone();
            departments[di].leaders.push(m.userid.clone());
            leader_of[di].get_or_insert(mi);
        }
    }
    for mi in 0..members.len() {
        let Some(main) = members[mi].main_department else {
            continue;
        };
        let mut di = main as usize - 1;
        loop {
            if let Some(l) = leader_of[di].filter(|&l| l != mi) {
                members[mi].direct_leader = vec![members[l].userid.clone()];
                break;
            }
            if di == 0 {
                break;
            }
            di = parent[di];
        }
    }
}

fn leader_title(di: usize, parent: &[usize]) -> &'static str {
    let mut depth = 1;
    let mut d = di;
    while d != 0 {
        d = parent[d];
        depth += 1;
    }
    match depth {
        1 => "总经理",
        2 => "总监",
        3 => "经理",
        4 => "主管",
        _ => "组长",
    }
}

fn build_tags(
    rng: &mut StdRng,
    departments: &[Department],
    members: &[Member],
    n: usize,
) -> Vec<Tag> {
    let max_size = members.len().min(2000);
    (0..n)
        .map(|i| {
            let name = match TAG_NAMES.get(i) {
                Some(t) => t.to_string(),
                None => format!("项目组{}", i + 1 - TAG_NAMES.len()),
            };
            let size = if max_size == 0 {
                0
            } else {
                (1 + skewed(rng, max_size / 2 + 1)).min(max_size)
            };
            let users: BTreeSet<String> = index::sample(rng, members.len(), size)
                .iter()
                .map(|mi| members[mi].userid.to_ascii_lowercase())
                .collect();
            // A quarter of the tags also hold departments (never the root: that would be everyone).
            let mut parties = BTreeSet::new();
            if departments.len() > 1 && rng.gen_range(0..100) < 25 {
                for _ in 0..rng.gen_range(1..=3) {
                    parties.insert(departments[rng.gen_range(1..departments.len())].id);
                }
            }
            Tag {
                id: i as u32 + 1,
                name,
                users,
                parties,
            }
        })
        .collect()
}

fn alnum(rng: &mut StdRng, len: usize) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALNUM[rng.gen_range(0..ALNUM.len())] as char)
        .collect()
}

/// Secrets look like WeCom's: 43 characters of `[A-Za-z0-9_-]`.
fn secret(rng: &mut StdRng) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    (0..43)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

#[rustfmt::skip]
const COMPANY_WORDS: &[&str] = &[
    "星河", "远航", "青禾", "云帆", "启明", "华章", "睿信", "嘉禾", "恒通", "博远", "新元", "长风",
];

#[rustfmt::skip]
const COMPANY_KINDS: &[&str] = &[
    "科技", "集团", "网络", "信息技术", "智能制造", "数据服务",
];

#[rustfmt::skip]
const LEVEL2: &[&str] = &[
    "研发中心", "产品中心", "市场部", "销售部", "财务部", "人力资源部", "行政部", "法务部", "客户服务部", "供应链中心", "运营中心", "质量管理部",
    "采购部", "信息技术部", "战略发展部", "品牌部", "生产中心", "国际业务部",
];

#[rustfmt::skip]
const LEVEL3: &[&str] = &[
    "华北区", "华东区", "华南区", "华中区", "西南区", "西北区", "东北区", "北京分部", "上海分部", "深圳分部", "广州分部", "杭州分部", "成都分部",
    "武汉分部", "平台部", "基础架构部", "数据部", "设计部", "项目管理部", "综合管理部", "创新业务部", "渠道部",
];

#[rustfmt::skip]
const LEVEL4: &[&str] = &[
    "前端组", "后端组", "测试组", "运维组", "算法组", "数据组", "客户端组", "安全组", "产品组", "设计组", "交付组", "实施组", "售前组",
    "渠道组", "大客户组", "培训组", "招聘组", "薪酬组", "会计组", "出纳组", "一组", "二组", "三组", "四组", "五组", "六组",
];

#[rustfmt::skip]
const POSITIONS: &[&str] = &[
    "工程师", "高级工程师", "资深工程师", "产品经理", "设计师", "销售经理", "客户经理", "会计", "人事专员", "行政专员", "客服专员", "运营专员",
    "测试工程师", "架构师", "数据分析师", "项目经理", "实施顾问", "采购专员", "法务专员", "实习生",
];

#[rustfmt::skip]
const SURNAMES: &[(&str, &str)] = &[
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
    ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
    ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("高", "gao"), ("林", "lin"),
    ("罗", "luo"), ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"), ("唐", "tang"),
    ("许", "xu"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"), ("彭", "peng"),
    ("曾", "zeng"), ("肖", "xiao"), ("田", "tian"), ("董", "dong"), ("袁", "yuan"), ("潘", "pan"),
    ("于", "yu"), ("蒋", "jiang"), ("蔡", "cai"), ("余", "yu"), ("杜", "du"), ("叶", "ye"),
    ("程", "cheng"), ("苏", "su"), ("魏", "wei"), ("吕", "lv"), ("丁", "ding"), ("任", "ren"),
    ("沈", "shen"), ("姚", "yao"), ("卢", "lu"), ("姜", "jiang"), ("崔", "cui"), ("钟", "zhong"),
    ("谭", "tan"), ("陆", "lu"), ("汪", "wang"), ("范", "fan"), ("金", "jin"), ("石", "shi"),
    ("廖", "liao"), ("贾", "jia"), ("夏", "xia"), ("韦", "wei"), ("付", "fu"), ("方", "fang"),
    ("白", "bai"), ("邹", "zou"), ("孟", "meng"), ("熊", "xiong"), ("秦", "qin"), ("邱", "qiu"),
    ("江", "jiang"), ("尹", "yin"), ("薛", "xue"), ("闫", "yan"), ("段", "duan"), ("雷", "lei"),
    ("侯", "hou"), ("龙", "long"), ("史", "shi"), ("陶", "tao"), ("黎", "li"), ("贺", "he"), ("顾", "gu"),
    ("毛", "mao"), ("郝", "hao"), ("龚", "gong"), ("邵", "shao"), ("万", "wan"), ("钱", "qian"),
    ("严", "yan"), ("覃", "qin"), ("武", "wu"), ("戴", "dai"), ("莫", "mo"), ("孔", "kong"),
    ("向", "xiang"), ("汤", "tang"), ("欧阳", "ouyang"), ("司马", "sima"), ("上官", "shangguan"),
];

#[rustfmt::skip]
const GIVEN: &[(&str, &str)] = &[
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"),
    ("杰", "jie"), ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀", "xiu"),
    ("霞", "xia"), ("平", "ping"), ("刚", "gang"), ("桂", "gui"), ("英", "ying"), ("华", "hua"),
    ("玉", "yu"), ("萍", "ping"), ("红", "hong"), ("鹏", "peng"), ("辉", "hui"), ("建", "jian"),
    ("文", "wen"), ("斌", "bin"), ("宇", "yu"), ("浩", "hao"), ("凯", "kai"), ("俊", "jun"), ("帆", "fan"),
    ("帅", "shuai"), ("欣", "xin"), ("怡", "yi"), ("婷", "ting"), ("雪", "xue"), ("琳", "lin"),
    ("晨", "chen"), ("思", "si"), ("佳", "jia"), ("嘉", "jia"), ("子", "zi"), ("梓", "zi"), ("涵", "han"),
    ("轩", "xuan"), ("博", "bo"), ("然", "ran"), ("悦", "yue"), ("彤", "tong"), ("诗", "shi"),
    ("雨", "yu"), ("萱", "xuan"), ("睿", "rui"), ("泽", "ze"), ("晗", "han"), ("昊", "hao"),
    ("天", "tian"), ("一", "yi"), ("可", "ke"), ("心", "xin"), ("安", "an"), ("宁", "ning"),
    ("晓", "xiao"), ("志", "zhi"), ("海", "hai"), ("波", "bo"), ("峰", "feng"), ("亮", "liang"),
    ("成", "cheng"), ("颖", "ying"), ("倩", "qian"), ("蕾", "lei"), ("璐", "lu"), ("瑶", "yao"),
    ("清", "qing"), ("新", "xin"), ("春", "chun"), ("秋", "qiu"), ("冬", "dong"), ("乐", "le"),
    ("瑞", "rui"), ("楠", "nan"), ("逸", "yi"), ("航", "hang"), ("远", "yuan"), ("翔", "xiang"),
    ("毅", "yi"), ("诚", "cheng"),
];

#[rustfmt::skip]
const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
    "156", "158", "159", "166", "177", "180", "181", "185", "186", "187", "188", "189", "199",
];

#[rustfmt::skip]
const AREA_CODES: &[&str] = &[
    "010", "020", "021", "0755", "0571", "028", "027", "025",
];

#[rustfmt::skip]
const CITIES: &[&str] = &[
    "北京市朝阳区", "北京市海淀区", "上海市浦东新区", "上海市徐汇区", "广州市天河区", "广州市海珠区", "深圳市南山区", "杭州市西湖区", "成都市高新区",
    "武汉市洪山区", "南京市鼓楼区",
];

#[rustfmt::skip]
const ROADS: &[&str] = &[
    "建国", "中山", "人民", "解放", "科技", "创业", "长江", "黄河", "新港中", "滨江", "学院",
];

#[rustfmt::skip]
const ALIASES: &[&str] = &[
    "David", "Lucy", "Kevin", "Amy", "Jack", "Cathy", "Leo", "Grace", "Tony", "Helen", "Eric",
    "Vivian", "Frank", "Iris", "Sam", "Nina",
];

#[rustfmt::skip]
const TAG_NAMES: &[&str] = &[
    "管理层", "技术委员会", "新员工", "党员", "工会委员", "安全员", "消防员", "培训讲师", "面试官", "项目A", "项目B", "项目C", "值班人员",
    "外派人员", "财务审批人", "IT管理员", "采购审批人", "导师", "校招生", "销售精英", "客户成功", "数据权限组", "合同管理员", "质量内审员",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(members: usize, departments: usize, tags: usize, seed: u64) -> GenerateOptions {
        GenerateOptions {
            members,
            departments,
            tags,
            seed,
        }
    }

    fn toml(o: &GenerateOptions) -> String {
        generate(o).to_toml().expect("serialisable")
    }

    /// A generated org written as JSON loads back (read from the file as it is parsed,
    /// for a million members) to the same org.
    #[test]
    fn a_json_scenario_file_loads_back() {
        let o = opts(300, 40, 6, 11);
        let path = std::env::temp_dir().join(format!("wecom-sim-gen-{}.json", std::process::id()));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        serde_json::to_writer(&mut f, &generate(&o)).unwrap();
        drop(f);
        let back = Scenario::load(&path).expect("loads");
        let _ = std::fs::remove_file(&path);
        assert_eq!(back.to_toml().unwrap(), toml(&o));
        std::fs::write(&path, "{\"corp\": [").unwrap();
        let e = Scenario::load(&path).unwrap_err().to_string();
        let _ = std::fs::remove_file(&path);
        assert!(e.contains("invalid JSON scenario"), "{e}");
    }

    #[test]
    fn same_seed_same_org_other_seed_other_org() {
        let a = toml(&opts(500, 60, 12, 7));
        assert_eq!(a, toml(&opts(500, 60, 12, 7)));
        assert_ne!(a, toml(&opts(500, 60, 12, 8)));
    }

    #[test]
    fn shape_invariants() {
        for (m, d, t, seed) in [
            (0, 1, 0, 1),
            (1, 1, 1, 2),
            (50, 3, 2, 3),
            (3000, 400, 40, 4),
            (20_000, 1500, 100, 5),
        ] {
            let sc = generate(&opts(m, d, t, seed));
            sc.validate().expect("valid scenario");
            let c = &sc.corps[0];
            assert_eq!(c.members.len(), m);
            assert_eq!(c.departments.len(), d);
            assert_eq!(c.tags.len(), t);

            let by_id: HashMap<u32, &Department> =
                c.departments.iter().map(|d| (d.id, d)).collect();
            let mut max_depth = 0;
            for dept in &c.departments {
                let (mut depth, mut cur) = (1, dept);
                while cur.parentid != 0 {
                    cur = by_id[&cur.parentid];
                    depth += 1;
                    assert!(depth <= 15, "tree deeper than 15");
                }
                max_depth = max_depth.max(depth);
                let names: BTreeSet<&str> = c
                    .departments
                    .iter()
                    .filter(|s| s.parentid == dept.parentid)
                    .map(|s| s.name.as_str())
                    .collect();
                assert_eq!(
                    names.len(),
                    c.departments
                        .iter()
                        .filter(|s| s.parentid == dept.parentid)
                        .count(),
                    "sibling names must be unique"
                );
            }
            assert!(max_depth <= MAX_DEPTH);
            if d >= 400 {
                assert!(max_depth >= 5, "a big org is deep (got {max_depth})");
            }

            let mut userids = BTreeSet::new();
            let mut mobiles = BTreeSet::new();
            let mut multi = 0;
            for mem in &c.members {
                assert!(userids.insert(mem.userid.to_ascii_lowercase()));
                assert!(mobiles.insert(mem.mobile.clone()));
                assert!(!mem.departments.is_empty() && mem.departments.len() <= 20);
                assert!(mem.departments.iter().all(|md| by_id.contains_key(&md.id)));
                assert_eq!(mem.main_department, Some(mem.departments[0].id));
                assert!(mem.direct_leader.len() <= 1);
                assert!(mem.direct_leader.iter().all(|l| l != &mem.userid));
                assert!(!mem.name.is_empty() && !mem.email.is_empty() && mem.mobile.len() == 11);
                if mem.departments.len() > 1 {
                    multi += 1;
                }
            }
            if m >= 3000 {
                let share = multi * 100 / m;
                assert!((8..=16).contains(&share), "multi-department share {share}%");
                let active = c
                    .members
                    .iter()
                    .filter(|m| m.status == status::ACTIVE)
                    .count();
                assert!(active * 100 / m >= 90 && active < m);
            }
            for dept in &c.departments {
                for l in &dept.leaders {
                    let lm = c
                        .members
                        .iter()
                        .find(|m| &m.userid == l)
                        .expect("leader exists");
                    assert!(lm
                        .departments
                        .iter()
                        .any(|md| md.id == dept.id && md.leader));
                }
            }
            let app = &c.apps[0];
            assert_eq!(app.agentid, APP_AGENTID);
            assert_eq!(app.scope.parties, vec![1]);
            assert_eq!(app.secret.len(), 43);
            assert!(c.contact_sync_secret.is_some());
        }
    }

    #[test]
    fn split_is_exact() {
        assert_eq!(split(10, &[1, 1, 1]).iter().sum::<usize>(), 10);
        assert_eq!(split(0, &[5, 1]), vec![0, 0]);
        assert_eq!(int_root_ceil(5000, 7), 4);
        assert_eq!(int_root_ceil(1, 3), 1);
    }
}
