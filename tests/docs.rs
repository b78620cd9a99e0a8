//! commands/<name>.json is the single source of the command surface: the
//! server's COMMAND INFO / COMMAND DOCS and the README table must agree
//! with it. `UPDATE_README=1 cargo test --test docs` regenerates the table.
mod common;

use std::path::Path;

use common::*;
use redis::Value;

fn specs() -> Vec<(String, serde_json::Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("commands");
    let mut out: Vec<(String, serde_json::Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let (name, spec) = v.as_object().unwrap().iter().next().unwrap();
            (name.clone(), spec.clone())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

fn as_map(v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Array(items) => items
            .chunks(2)
            .map(|p| (text(&p[0]), p[1].clone()))
            .collect(),
        Value::Map(items) => items.iter().map(|(k, v)| (text(k), v.clone())).collect(),
        other => panic!("not a map: {other:?}"),
    }
}

fn field(v: &Value, k: &str) -> Option<Value> {
    as_map(v).into_iter().find(|(f, _)| f == k).map(|(_, v)| v)
}

pub fn readme_table() -> String {
    let mut t = String::from("| Command | Summary | Replaces (reference) |\n|---|---|---|\n");
    for (name, spec) in specs() {
        let internal = spec
            .get("internal")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let replaces: Vec<String> = spec["replaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("`{}`", r.as_str().unwrap()))
            .collect();
        t.push_str(&format!(
            "| `{}`{} | {} | {} |\n",
            name,
            if internal { " (internal)" } else { "" },
            spec["summary"].as_str().unwrap().replace('|', "\\|"),
            replaces.join(", ")
        ));
    }
    t
}

#[test]
fn readme_table_is_generated_from_commands() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = ("<!-- commands:start -->\n", "<!-- commands:end -->");
    let a = readme
        .find(start)
        .expect("README has the commands:start marker")
        + start.len();
    let b = readme
        .find(end)
        .expect("README has the commands:end marker");
    let want = readme_table();
    if std::env::var("UPDATE_README").is_ok() {
        let new = format!("{}{}{}", &readme[..a], want, &readme[b..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert_eq!(
        &readme[a..b],
        want,
        "README table is stale: run UPDATE_README=1 cargo test --release --test docs"
    );
}

#[test]
fn server_sees_what_the_specs_say() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let listed: Vec<String> = redis::cmd("COMMAND")
        .arg("LIST")
        .arg("FILTERBY")
        .arg("MODULE")
        .arg("flowfabric")
        .query(&mut c)
        .unwrap();
    let mut listed: Vec<String> = listed.into_iter().map(|s| s.to_uppercase()).collect();
    listed.sort();
    let names: Vec<String> = specs().into_iter().map(|(n, _)| n).collect();
    assert_eq!(listed, names, "registered commands = command files");

    for (name, spec) in specs() {
        let info: Value = redis::cmd("COMMAND")
            .arg("INFO")
            .arg(&name)
            .query(&mut c)
            .unwrap();
        let Value::Array(mut outer) = info else {
            panic!()
        };
        let Value::Array(entry) = outer.remove(0) else {
            panic!("{name} not registered")
        };
        assert_eq!(text(&entry[1]), spec["arity"].to_string(), "{name} arity");
        let flags: Vec<String> = match &entry[2] {
            Value::Array(f) => f.iter().map(text).collect(),
            Value::Set(f) => f.iter().map(text).collect(),
            other => panic!("{other:?}"),
        };
        for f in spec["command_flags"].as_array().unwrap() {
            let want = f.as_str().unwrap().to_lowercase();
            assert!(flags.contains(&want), "{name} flag {want} in {flags:?}");
        }
        let cats: Vec<String> = match &entry[6] {
            Value::Array(f) => f.iter().map(text).collect(),
            Value::Set(f) => f.iter().map(text).collect(),
            other => panic!("{other:?}"),
        };
        for cat in spec["acl_categories"].as_array().unwrap() {
            let want = format!("@{}", cat.as_str().unwrap().to_lowercase());
            assert!(cats.contains(&want), "{name} ACL {want} in {cats:?}");
        }
        // Tips, as cluster clients read them to fan node-local commands out.
        let tips: Vec<String> = match &entry[7] {
            Value::Array(f) => f.iter().map(text).collect(),
            Value::Set(f) => f.iter().map(text).collect(),
            other => panic!("{other:?}"),
        };
        let want_tips: Vec<String> = spec
            .get("command_tips")
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
            .map(|t| t.as_str().unwrap().to_lowercase())
            .collect();
        assert_eq!(tips, want_tips, "{name} tips");
        let Value::Array(ks) = &entry[8] else {
            panic!("{name} key specs")
        };
        assert_eq!(
            ks.len(),
            spec["key_specs"].as_array().unwrap().len(),
            "{name} key spec count"
        );
        // What each key spec says is opened, and how.
        for (got, want) in ks.iter().zip(spec["key_specs"].as_array().unwrap()) {
            let notes = field(got, "notes").map(|v| text(&v)).unwrap_or_default();
            assert_eq!(
                notes,
                want["notes"].as_str().unwrap_or_default(),
                "{name} key spec notes"
            );
            let mut flags: Vec<String> = match field(got, "flags") {
                // The server spells RW upper-case, access/update lower-case.
                Some(Value::Array(f)) => f.iter().map(|x| text(x).to_uppercase()).collect(),
                Some(Value::Set(f)) => f.iter().map(|x| text(x).to_uppercase()).collect(),
                other => panic!("{name} key spec flags: {other:?}"),
            };
            let mut want_flags: Vec<String> = want["flags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_string())
                .collect();
            flags.sort();
            want_flags.sort();
            assert_eq!(flags, want_flags, "{name} key spec flags");
        }

        let docs: Value = redis::cmd("COMMAND")
            .arg("DOCS")
            .arg(&name)
            .query(&mut c)
            .unwrap();
        let doc = as_map(&docs).into_iter().next().expect("docs").1;
        assert_eq!(
            text(&field(&doc, "summary").unwrap()),
            spec["summary"].as_str().unwrap()
        );
        assert_eq!(
            text(&field(&doc, "since").unwrap()),
            spec["since"].as_str().unwrap()
        );
        assert_eq!(
            text(&field(&doc, "complexity").unwrap()),
            spec["complexity"].as_str().unwrap()
        );
        let want_args: Vec<String> = spec["arguments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect();
        let got_args: Vec<String> = match field(&doc, "arguments") {
            Some(Value::Array(args)) => args
                .iter()
                .map(|a| text(&field(a, "name").unwrap()))
                .collect(),
            _ => Vec::new(),
        };
        assert_eq!(got_args, want_args, "{name} arguments");
    }
}
