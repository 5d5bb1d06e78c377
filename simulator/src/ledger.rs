//! Realistic township ledgers (台账) for trying Anxin out (`anxin ledger
//! sample`), for benchmarks and for tests: the columns a township keeps,
//! typed as a township would (full-width brackets, a 序号 column), for `n`
//! made-up elders spread over three townships of one county. The citizen IDs
//! are valid by their check digit but belong to nobody.

pub use anxin_domain::registry::check_digit;

/// A valid citizen ID born on `birth` (`YYYYMMDD`) with sequence `seq` (0–999).
pub fn citizen_id(birth: &str, seq: u32) -> String {
    let first17 = format!("210602{birth}{seq:03}");
    format!("{first17}{}", check_digit(&first17))
}

pub const COUNTY: &str = "振兴区";
pub const TOWNSHIPS: [&str; 3] = ["站前街道", "汤池镇", "五龙背镇"];
pub const VILLAGES: [&str; 4] = ["一村", "二村", "三村", "四村"];

/// The header row, with a 序号 column townships add, in the form's words.
pub fn headers() -> Vec<String> {
    let mut headers: Vec<&str> = vec![
        "序号",
        "县（市、区）",
        "乡镇（街道）",
        "村（居）",
        "家庭住址",
        "是否居住在户籍所在地",
        "被探访人姓名",
        "公民身份号码",
        "联系电话",
        "紧急联系人",
        "紧急联系人电话",
        "是否残疾",
        "残疾人证号",
        "是否独居",
        "是否空巢",
        "是否留守",
        "是否失能",
        "是否重残",
        "是否计划生育特殊家庭老年人",
        "子女外出时间",
        "户主姓名",
        "户主性别",
        "户主公民身份号码",
        "户主与被探访人关系",
        "户主健康状况",
        "户主是否为低保对象/特困人员",
        "饮水是否安全",
        "生活用电是否安全",
        "住房是否安全",
        "家庭每月收入（元）",
        "家庭每月领取养老保险、社会救助和社会福利补贴等情况",
        "帮扶单位（组织）",
        "帮扶责任人",
        "帮扶措施",
    ];
    headers.push("探访责任人");
    headers.into_iter().map(str::to_string).collect()
}

/// Elder `i` of a ledger: township `i % 3`, village `(i / 3) % 4`.
pub fn township_of(i: usize) -> (&'static str, &'static str) {
    (TOWNSHIPS[i % 3], VILLAGES[(i / 3) % 4])
}

/// A ledger of `n` valid elders (header row first). `visitor` names the
/// 探访责任人 of every fifth elder; the others have none yet.
pub fn township_ledger(n: usize, visitor: &str) -> Vec<Vec<String>> {
    const SURNAMES: [&str; 8] = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄"];
    const GIVEN: [&str; 8] = ["秀英", "桂兰", "玉珍", "淑珍", "德明", "振华", "凤芝", "长海"];
    let mut rows = vec![headers()];
    for i in 0..n {
        let (township, village) = township_of(i);
        let year = 1930 + (i % 35);
        let birth = format!("{year}{:02}{:02}", 1 + i % 12, 1 + i % 28);
        let seq = u32::try_from(i / 420).unwrap_or(0) * 10 + u32::try_from(i % 10).unwrap_or(0);
        let id = citizen_id(&birth, seq % 1000);
        let name = format!("{}{}", SURNAMES[i % 8], GIVEN[(i / 8) % 8]);
        let yes_no = |yes: bool| if yes { "是" } else { "否" }.to_string();
        let disabled = i % 9 == 0;
        // A second-generation certificate: the ID, the category, the grade;
        // grades 1 and 2 are 重残 (annex 2).
        let grade = 1 + (i / 9) % 4;
        rows.push(vec![
            (i + 1).to_string(),
            COUNTY.into(),
            township.into(),
            village.into(),
            format!("{village}{}组{}号", 1 + i % 6, 1 + i % 40),
            yes_no(i % 13 != 0),
            name.clone(),
            id.clone(),
            format!("139{:08}", i),
            if i % 4 == 0 { String::new() } else { format!("{}建国", SURNAMES[(i + 3) % 8]) },
            if i % 4 == 0 { String::new() } else { format!("0415-{:07}", 2_000_000 + i) },
            yes_no(disabled),
            if disabled { format!("{id}{}{grade}", 1 + i % 4) } else { String::new() },
            yes_no(i % 2 == 0),
            yes_no(i % 2 == 1),
            yes_no(i % 7 == 0),
            yes_no(i % 5 == 0),
            yes_no(disabled && grade <= 2),
            yes_no(i % 50 == 0),
            if i % 7 == 0 { format!("2025-{:02}-01", 1 + i % 12) } else { String::new() },
            name,
            if i % 3 == 0 { "男" } else { "女" }.into(),
            id,
            "本人".into(),
            ["良好", "高血压", "糖尿病", "行动不便"][i % 4].into(),
            ["否", "低保对象", "特困人员"][i % 3].into(),
            yes_no(true),
            yes_no(i % 17 != 0),
            yes_no(i % 23 != 0),
            format!("{}", 800 + (i % 20) * 50),
            "城乡居民养老保险 150 元".into(),
            if i % 6 == 0 { "乡镇(街道)、村(居)民委员会；志愿者".into() } else { String::new() },
            if i % 6 == 0 { "村委会刘主任".into() } else { String::new() },
            if i % 6 == 0 { "每周上门一次".into() } else { String::new() },
            if i % 5 == 0 { visitor.to_string() } else { String::new() },
        ]);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_and_carry_gb_11643s_example_digit() {
        assert_eq!(check_digit("11010519491231002"), 'X');
        let rows = township_ledger(5_000, "v");
        let ids: std::collections::HashSet<&String> = rows[1..].iter().map(|row| &row[7]).collect();
        assert_eq!(ids.len(), 5_000);
        assert!(rows.iter().all(|row| row.len() == rows[0].len()));
    }
}
