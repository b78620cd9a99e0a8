//! Every command answers malformed input with an error reply and changes
//! nothing; the server survives hostile bytes (NUL, huge, non-UTF-8).
mod common;

use common::*;

fn run(c: &mut redis::Connection, args: &[&[u8]]) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c)
}

#[test]
fn sweep_changes_nothing() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    // Some state to protect: one waiting, one active, one done.
    submit(&mut c, "q", "a", &[]);
    let j = claim(&mut c, "w", &["q"], &["LEASE", "600000"]).unwrap();
    let waiting = submit(&mut c, "q", "w", &[]);
    let _: String = redis::cmd("SET")
        .arg("plainkey")
        .arg("v")
        .query(&mut c)
        .unwrap();
    let _: redis::Value = redis::cmd("FF.ROTATESECRET")
        .arg("k1")
        .arg("00112233445566778899aabbccddeeff")
        .query(&mut c)
        .unwrap();
    // Flows for the flow commands' parsers and checks to reach: `fl` in
    // the waiting execution's partition with members a, b, cm (a -> b),
    // `fl2` there too with one member, `done_fl` cancelled (flow_only)
    // with two waiting members, and `far` in another partition with one.
    let ptag = tag_of(&waiting);
    let qtag = (0..256)
        .map(|p| format!("{{fp:{p}}}"))
        .find(|t| *t != ptag)
        .unwrap();
    let new_flow = |c: &mut redis::Connection, tag: &str| -> String {
        let (id, created): (String, i64) = redis::cmd("FF.FLOWCREATE").arg(tag).query(c).unwrap();
        assert_eq!(created, 1);
        id
    };
    let join = |c: &mut redis::Connection, tag: &str, flow: &str, lane: &str| -> String {
        redis::cmd("FF.SUBMIT")
            .arg(tag)
            .arg(lane)
            .arg("m")
            .arg("FLOW")
            .arg(flow)
            .query(c)
            .unwrap()
    };
    let fl = new_flow(&mut c, &ptag);
    let fa = join(&mut c, &ptag, &fl, "fa");
    let fb = join(&mut c, &ptag, &fl, "fb");
    let fc = join(&mut c, &ptag, &fl, "fc");
    let (edge_id, _, _, _): (String, i64, i64, i64) = redis::cmd("FF.EDGE")
        .arg(&fl)
        .arg(&fa)
        .arg(&fb)
        .query(&mut c)
        .unwrap();
    let fl2 = new_flow(&mut c, &ptag);
    let m2 = join(&mut c, &ptag, &fl2, "f2");
    let done_fl = new_flow(&mut c, &ptag);
    let d1 = join(&mut c, &ptag, &done_fl, "d1");
    let d2 = join(&mut c, &ptag, &done_fl, "d2");
    let _: redis::Value = redis::cmd("FF.CANCELFLOW")
        .arg(&done_fl)
        .arg("POLICY")
        .arg("flow_only")
        .query(&mut c)
        .unwrap();
    let far = new_flow(&mut c, &qtag);
    let fg = join(&mut c, &qtag, &far, "fg");
    let before = digest(&mut c);

    let id = j.id.as_bytes();
    let lease = j.lease_id.as_bytes();
    let att = j.attempt_id.as_bytes();
    let epoch = j.epoch.to_string();
    let ep = epoch.as_bytes();
    let missing = b"{fp:1}:00000000-0000-4000-8000-000000000001".as_slice();
    let long_name = vec![b'n'; 257];
    let big_frame = vec![b'x'; 65537];
    let deep_patch = format!("{}1{}", r#"{"a":"#.repeat(18), "}".repeat(18)).into_bytes();
    let huge = vec![b'x'; 17 * 1024 * 1024];
    let long65 = vec![b'l'; 65];
    let long325 = long65.repeat(5);
    let nul = b"a\0b".as_slice();
    let bin = b"\xff\xfe\x00".as_slice();
    let big_caps = vec![b'c'; 4097];
    let many_caps = (0..300)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let cases: Vec<Vec<&[u8]>> = vec![
        // FF.SUBMIT
        vec![b"FF.SUBMIT"],
        vec![b"FF.SUBMIT", b"*"],
        vec![b"FF.SUBMIT", b"*", b"q"],
        vec![b"FF.SUBMIT", b"nope", b"q", b"p"],
        vec![b"FF.SUBMIT", b"{fp:256}", b"q", b"p"],
        vec![b"FF.SUBMIT", b"{fp:-1}", b"q", b"p"],
        vec![b"FF.SUBMIT", b"{fp:1}:not-a-uuid", b"q", b"p"],
        vec![b"FF.SUBMIT", nul, b"q", b"p"],
        vec![b"FF.SUBMIT", b"*", b"", b"p"],
        vec![b"FF.SUBMIT", b"*", &long65, b"p"],
        vec![b"FF.SUBMIT", b"*", nul, b"p"],
        vec![b"FF.SUBMIT", b"*", bin, b"p"],
        vec![b"FF.SUBMIT", b"*", b"q", &huge],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"PRIORITY"],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"PRIORITY", b"abc"],
        vec![
            b"FF.SUBMIT",
            b"*",
            b"q",
            b"p",
            b"PRIORITY",
            b"99999999999999999999999",
        ],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"DELAY_UNTIL", b"-5"],
        // Seconds where unix ms belong, both halves of a pair, a span
        // past a year, a deadline of 0 ms or already past.
        vec![
            b"FF.SUBMIT",
            b"*",
            b"q",
            b"p",
            b"DELAY_UNTIL",
            b"1700000000",
        ],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"DEADLINE", b"1700000000"],
        vec![
            b"FF.SUBMIT",
            b"*",
            b"q",
            b"p",
            b"DEADLINE",
            b"1600000000000",
        ],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"DEADLINE_IN", b"0"],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"DELAY", b"-1"],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"DELAY", b"31536000001"],
        vec![
            b"FF.SUBMIT",
            b"*",
            b"q",
            b"p",
            b"DELAY",
            b"5",
            b"DELAY_UNTIL",
            b"4000000000000",
        ],
        vec![
            b"FF.SUBMIT",
            b"*",
            b"q",
            b"p",
            b"DEADLINE_IN",
            b"5",
            b"DEADLINE",
            b"4000000000000",
        ],
        vec![
            b"FF.SUBMIT",
            b"*",
            b"q",
            b"p",
            b"DEADLINE",
            b"18446744073709551616",
        ],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"CAPS", b"a b"],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"CAPS", nul],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"CAPS", &big_caps],
        vec![
            b"FF.SUBMIT",
            b"*",
            b"q",
            b"p",
            b"CAPS",
            many_caps.as_bytes(),
        ],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"CAPS", b"a,,b"],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"MAX_RETRIES", b"100001"],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"BACKOFF", b"LINEAR", b"1"],
        vec![
            b"FF.SUBMIT",
            b"*",
            b"q",
            b"p",
            b"BACKOFF",
            b"EXPONENTIAL",
            b"1",
            b"2",
        ],
        vec![
            b"FF.SUBMIT",
            b"*",
            b"q",
            b"p",
            b"BACKOFF",
            b"EXPONENTIAL",
            b"1",
            b"2",
            b"0.5",
        ],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"TAG", b"k"],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"TAG", b"", b"v"],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"IDEMPOTENCY", b"k", b"0"],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"IDEMPOTENCY", b"k", b"-1"],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"NAMESPACE", &long325],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"AT", b"1"],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", nul],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"BOGUS"],
        vec![b"FF.SUBMIT", b"plainkey", b"q", b"p"],
        // FF.CLAIM
        vec![b"FF.CLAIM"],
        vec![b"FF.CLAIM", b"w", b"i", b"1"],
        vec![b"FF.CLAIM", b"w", b"i", b"0", b"q"],
        vec![b"FF.CLAIM", b"w", b"i", b"-1", b"q"],
        vec![b"FF.CLAIM", b"w", b"i", b"2", b"q"],
        vec![b"FF.CLAIM", b"w", b"i", b"99999999999999999999", b"q"],
        vec![b"FF.CLAIM", b"", b"i", b"1", b"q"],
        vec![b"FF.CLAIM", nul, b"i", b"1", b"q"],
        vec![b"FF.CLAIM", b"w", b"i", b"1", &long65],
        vec![b"FF.CLAIM", b"w", b"i", b"1", b"q", b"LEASE", b"0"],
        vec![b"FF.CLAIM", b"w", b"i", b"1", b"q", b"LEASE", b"604800001"],
        vec![b"FF.CLAIM", b"w", b"i", b"1", b"q", b"BLOCK", b"-1"],
        vec![b"FF.CLAIM", b"w", b"i", b"1", b"q", b"CAPS", &big_caps],
        vec![b"FF.CLAIM", b"w", b"i", b"1", b"q", b"WHAT"],
        // FF.RENEW / FF.COMPLETE
        vec![b"FF.RENEW", id, lease, ep],
        vec![b"FF.RENEW", b"bad", lease, ep, att],
        vec![b"FF.RENEW", id, b"bad", ep, att],
        vec![b"FF.RENEW", id, lease, b"-1", att],
        vec![b"FF.RENEW", id, lease, b"x", att],
        vec![b"FF.RENEW", id, lease, ep, b"bad"],
        vec![b"FF.RENEW", id, lease, ep, att, b"LEASE", b"0"],
        vec![b"FF.RENEW", id, lease, ep, att, b"AT", b"1"],
        vec![b"FF.RENEW", id, lease, ep, att, b"EXTRA"],
        vec![b"FF.RENEW", missing, lease, ep, att],
        vec![b"FF.RENEW", waiting.as_bytes(), lease, ep, att],
        vec![b"FF.COMPLETE", id, lease, ep],
        vec![b"FF.COMPLETE", id, lease, ep, att, b"RESULT"],
        vec![b"FF.COMPLETE", id, lease, ep, att, b"RESULT", &huge],
        vec![b"FF.COMPLETE", id, lease, ep, att, b"AT", b"1"],
        vec![b"FF.COMPLETE", id, lease, b"2", att],
        vec![b"FF.COMPLETE", missing, lease, ep, att],
        // FF.FAIL / FF.CANCEL
        vec![b"FF.FAIL", id, lease, ep],
        vec![b"FF.FAIL", id, lease, ep, att, b"REASON"],
        vec![b"FF.FAIL", id, lease, ep, att, b"REASON", &huge],
        vec![b"FF.FAIL", id, lease, ep, att, b"RETRY_AT", b"5"],
        vec![b"FF.FAIL", id, lease, ep, att, b"AT", b"5"],
        vec![b"FF.FAIL", id, b"bad", ep, att],
        vec![b"FF.FAIL", id, lease, b"2", att],
        vec![b"FF.FAIL", missing, lease, ep, att],
        vec![b"FF.FAIL", id, lease, ep, att, b"CATEGORY"],
        vec![b"FF.FAIL", id, lease, ep, att, b"CATEGORY", b""],
        vec![b"FF.FAIL", id, lease, ep, att, b"CATEGORY", nul],
        vec![b"FF.FAIL", id, lease, ep, att, b"CATEGORY", &long325],
        vec![b"FF.FAIL", id, lease, ep, att, b"NON_RETRYABLE", b"1"],
        vec![b"FF.CANCEL"],
        vec![b"FF.CANCEL", b"bad"],
        vec![b"FF.CANCEL", missing],
        vec![b"FF.CANCEL", id, b"FENCE", lease, ep],
        vec![b"FF.CANCEL", id, b"FENCE", lease, b"2", att],
        vec![b"FF.CANCEL", id, b"REASON"],
        vec![b"FF.CANCEL", id, b"AT", b"1"],
        vec![b"FF.CANCEL", id, b"BOGUS"],
        vec![b"FF.DELAY", id, lease, ep, att],
        vec![b"FF.WAITCHILDREN", id, lease, ep],
        vec![b"FF.WAITCHILDREN", id, lease, ep, att, b"LEASE", b"100"],
        vec![b"FF.DELAY", id, lease, ep, att, b"-1"],
        vec![b"FF.DELAY", id, lease, ep, att, b"1700000000"],
        vec![b"FF.DELAY", id, lease, ep, att, b"FOR"],
        vec![b"FF.DELAY", id, lease, ep, att, b"FOR", b"-1"],
        vec![b"FF.DELAY", id, lease, ep, att, b"FOR", b"31536000001"],
        vec![b"FF.DELAY", id, lease, ep, att, b"FOR", b"5", b"x"],
        vec![b"FF.DELAY", id, lease, b"2", att, b"5"],
        vec![b"FF.REVOKE"],
        vec![b"FF.REVOKE", id, b"LEASE", b"bad"],
        vec![b"FF.REVOKE", missing],
        vec![b"FF.PRIORITY", id],
        vec![b"FF.PRIORITY", waiting.as_bytes(), b"x"],
        vec![
            b"FF.PRIORITY",
            waiting.as_bytes(),
            b"99999999999999999999999",
        ],
        vec![b"FF.PRIORITY", id, b"5"],
        // reads
        vec![b"FF.GET"],
        vec![b"FF.GET", id, id],
        vec![b"FF.GET", b"bad"],
        vec![b"FF.GET", nul],
        vec![b"FF.GET", missing],
        vec![b"FF.RESULT", missing],
        vec![b"FF.PAYLOAD", b"{fp:1}"],
        vec![b"FF.PARTITION", b""],
        vec![b"FF.PARTITION", nul],
        vec![b"FF.VERSION", b"x"],
        vec![b"FF.PAUSE"],
        vec![b"FF.PAUSE", b""],
        vec![b"FF.PAUSE", nul],
        vec![b"FF.RESUME", &long65],
        vec![b"FF.PAUSED", b"x"],
        vec![b"FF.REGISTER", b"i", b"w"],
        vec![b"FF.REGISTER", b"i", b"w", b"0"],
        vec![b"FF.REGISTER", b"i", b"w", b"-5"],
        vec![b"FF.REGISTER", nul, b"w", b"10"],
        vec![b"FF.REGISTER", b"i", b"w", b"10", b"CAPS", &big_caps],
        vec![b"FF.REGISTER", b"i", b"w", b"10", b"LANES", b"2", b"a"],
        vec![b"FF.REGISTER", b"i", b"w", b"10", b"AT", b"5"],
        vec![b"FF.HEARTBEAT", b"nobody"],
        vec![b"FF.MARKDEAD", b"nobody"],
        vec![b"FF.WORKERS", b"x"],
        // Suspension, waitpoints, signals, keys
        vec![b"FF.SUSPEND", id, lease, ep],
        vec![b"FF.SUSPEND", id, lease, ep, att, b"CONDITION"],
        vec![
            b"FF.SUSPEND",
            id,
            lease,
            ep,
            att,
            b"CONDITION",
            b"ALLOF",
            b"0",
        ],
        vec![
            b"FF.SUSPEND",
            id,
            lease,
            ep,
            att,
            b"CONDITION",
            b"ALLOF",
            b"99999999999999999999",
        ],
        vec![
            b"FF.SUSPEND",
            id,
            lease,
            ep,
            att,
            b"CONDITION",
            b"COUNT",
            b"0",
            b"SIGNALS",
            b"ANY",
            b"1",
            b"k",
        ],
        vec![
            b"FF.SUSPEND",
            id,
            lease,
            ep,
            att,
            b"CONDITION",
            b"ONE",
            b"k",
            b"NAME",
        ],
        vec![
            b"FF.SUSPEND",
            id,
            lease,
            ep,
            att,
            b"CONDITION",
            b"ONE",
            nul,
            b"NAME",
            nul,
        ],
        vec![
            b"FF.SUSPEND",
            id,
            lease,
            ep,
            att,
            b"WAITPOINT",
            b"a",
            b"CONDITION",
            b"ONE",
            b"b",
            b"ANY",
        ],
        vec![
            b"FF.SUSPEND",
            id,
            lease,
            ep,
            att,
            b"WAITPOINT",
            b"a",
            b"WAITPOINT",
            b"a",
        ],
        vec![b"FF.SUSPEND", id, lease, ep, att, b"WAITPOINT", &long325],
        vec![b"FF.SUSPEND", id, lease, ep, att, b"PENDING", b"nope"],
        vec![
            b"FF.SUSPEND",
            id,
            lease,
            ep,
            att,
            b"PENDING",
            missing.get(7..).unwrap_or(b"x"),
        ],
        vec![b"FF.SUSPEND", id, lease, ep, att, b"TIMEOUT", b"-1"],
        vec![b"FF.SUSPEND", id, lease, ep, att, b"TIMEOUT_AT", b"1"],
        vec![
            b"FF.SUSPEND",
            id,
            lease,
            ep,
            att,
            b"TIMEOUT",
            b"5",
            b"TIMEOUT_AT",
            b"4000000000000",
        ],
        vec![b"FF.SUSPEND", id, lease, ep, att, b"ON_TIMEOUT", b"explode"],
        vec![
            b"FF.SUSPEND",
            id,
            lease,
            ep,
            att,
            b"CONDITION",
            b"TIMEOUT_ONLY",
        ],
        vec![b"FF.SUSPEND", id, lease, ep, att, b"SUSPENSION_ID", b"x"],
        vec![b"FF.SUSPEND", id, lease, b"99", att],
        vec![b"FF.SUSPEND", missing, lease, ep, att],
        vec![b"FF.SUSPEND", id, lease, ep, att, b"AT", b"5"],
        vec![b"FF.WAITPOINT", id, lease, ep],
        vec![b"FF.WAITPOINT", id, lease, ep, att, b"EXPIRES_IN", b"0"],
        vec![
            b"FF.WAITPOINT",
            id,
            lease,
            ep,
            att,
            b"EXPIRES_AT",
            b"86400000",
        ],
        vec![
            b"FF.WAITPOINT",
            id,
            lease,
            ep,
            att,
            b"EXPIRES_IN",
            b"5",
            b"EXPIRES_AT",
            b"4000000000000",
        ],
        vec![b"FF.WAITPOINT", id, lease, ep, att, b"KEY", b""],
        vec![b"FF.WAITPOINT", id, lease, ep, att, b"WAITPOINT_ID", nul],
        vec![
            b"FF.WAITPOINT",
            id,
            b"00000000-0000-4000-8000-000000000000",
            ep,
            att,
        ],
        vec![b"FF.SIGNAL", id],
        vec![b"FF.SIGNAL", id, att, b"k1:00", b"n"],
        vec![b"FF.SIGNAL", id, att, b"", b"n"],
        vec![b"FF.SIGNAL", id, b"nope", b"k1:00", b"n"],
        vec![b"FF.SIGNAL", id, att, b"k1:00", b""],
        vec![b"FF.SIGNAL", id, att, b"k1:00", b"n", b"PAYLOAD", &huge],
        vec![b"FF.SIGNAL", id, att, &huge, b"n"],
        vec![b"FF.SIGNAL", id, att, nul, b"n"],
        vec![b"FF.SIGNAL", missing, att, b"k1:00", b"n"],
        vec![
            b"FF.SIGNAL",
            id,
            att,
            b"k1:00",
            b"n",
            b"SOURCE",
            b"only-one",
        ],
        vec![b"FF.SIGNAL", id, att, b"k1:00", b"n", b"DEDUP_TTL", b"-1"],
        vec![b"FF.APPROVE", id, att],
        vec![b"FF.APPROVE", id, att, b"n"],
        vec![b"FF.APPROVE", id, att, b"n", b"PAYLOAD", b"p"],
        vec![b"FF.WAKE"],
        vec![b"FF.WAKE", id],
        vec![b"FF.WAKE", waiting.as_bytes()],
        vec![b"FF.WAKE", id, b"RESUME_DELAY", b"x"],
        vec![b"FF.CLOSEWP", id],
        vec![b"FF.CLOSEWP", id, att],
        vec![b"FF.CLOSEWP", id, b"nope"],
        vec![b"FF.WPTOKEN", id],
        vec![b"FF.WPTOKEN", id, b"nope"],
        vec![b"FF.WAITPOINTS"],
        vec![b"FF.WAITPOINTS", missing],
        vec![b"FF.WAITPOINTS", id, b"x"],
        vec![b"FF.SIGNALS", id, b"SOME"],
        vec![b"FF.SIGNALS", missing],
        vec![b"FF.SUSPENDED", b"nope"],
        vec![b"FF.SUSPENDED", b"{fp:1}", b"STATE", b"waiting"],
        vec![b"FF.SUSPENDED", b"{fp:1}", b"COUNT", b"0"],
        vec![b"FF.ROTATESECRET", b"k1"],
        vec![
            b"FF.ROTATESECRET",
            b"a:b",
            b"00112233445566778899aabbccddeeff",
        ],
        vec![b"FF.ROTATESECRET", b"k2", b"abc"],
        vec![b"FF.ROTATESECRET", b"k2", b"0011"],
        vec![
            b"FF.ROTATESECRET",
            b"k2",
            b"zz112233445566778899aabbccddeeff",
        ],
        vec![
            b"FF.ROTATESECRET",
            b"k1",
            b"ffeeddccbbaa99887766554433221100",
        ],
        vec![
            b"FF.ROTATESECRET",
            b"k2",
            b"00112233445566778899aabbccddeeff",
            b"GRACE",
            b"9007199254740992",
        ],
        vec![b"FF.ROTATESECRET", nul, b"00112233445566778899aabbccddeeff"],
        vec![
            b"FF.ROTATESECRET",
            b"k2",
            b"00112233445566778899aabbccddeeff",
            b"AT",
            b"1",
        ],
        vec![b"FF.SECRETS", b"x"],
        // FF.APPEND / FF.FRAMES / FF.SUMMARY
        vec![b"FF.APPEND"],
        vec![b"FF.APPEND", id],
        vec![b"FF.APPEND", id, lease, ep, att],
        vec![b"FF.APPEND", id, lease, ep, att, b"t"],
        vec![b"FF.APPEND", id, lease, ep, att, b"", b"p"],
        vec![b"FF.APPEND", id, lease, ep, att, &long_name, b"p"],
        vec![
            b"FF.APPEND",
            id,
            lease,
            ep,
            att,
            b"t",
            b"p",
            b"MODE",
            b"loud",
        ],
        vec![b"FF.APPEND", id, lease, ep, att, b"t", b"p", b"MODE"],
        vec![
            b"FF.APPEND",
            id,
            lease,
            ep,
            att,
            b"t",
            b"p",
            b"MAXLEN",
            b"100",
        ],
        vec![
            b"FF.APPEND",
            id,
            lease,
            ep,
            att,
            b"t",
            b"p",
            b"MODE",
            b"best_effort",
            b"MAXLEN",
            b"63",
        ],
        vec![
            b"FF.APPEND",
            id,
            lease,
            ep,
            att,
            b"t",
            b"p",
            b"MODE",
            b"best_effort",
            b"MAXLEN",
            b"16385",
        ],
        vec![
            b"FF.APPEND",
            id,
            lease,
            ep,
            att,
            b"t",
            b"p",
            b"MODE",
            b"best_effort",
            b"TTL",
            b"0",
        ],
        vec![
            b"FF.APPEND",
            id,
            lease,
            ep,
            att,
            b"t",
            b"p",
            b"MODE",
            b"best_effort",
            b"TTL",
            b"-1",
        ],
        vec![
            b"FF.APPEND",
            id,
            lease,
            ep,
            att,
            b"t",
            b"p",
            b"MODE",
            b"summary",
        ],
        vec![
            b"FF.APPEND",
            id,
            lease,
            ep,
            att,
            b"t",
            b"[1]",
            b"MODE",
            b"summary",
        ],
        vec![
            b"FF.APPEND",
            id,
            lease,
            ep,
            att,
            b"t",
            &deep_patch,
            b"MODE",
            b"summary",
        ],
        vec![b"FF.APPEND", id, lease, ep, att, b"t", &big_frame],
        vec![b"FF.APPEND", id, lease, b"99", att, b"t", b"p"],
        vec![b"FF.APPEND", id, b"nope", ep, att, b"t", b"p"],
        vec![b"FF.APPEND", id, lease, ep, att, b"t", b"p", b"AT", b"1"],
        vec![b"FF.APPEND", id, lease, ep, att, b"t", b"p", b"FEED", b"0"],
        vec![
            b"FF.APPEND",
            id,
            lease,
            ep,
            att,
            b"t",
            b"p",
            b"MAX_RECLAIMS",
            b"1",
        ],
        vec![
            b"FF.APPEND",
            id,
            lease,
            ep,
            att,
            b"t",
            b"p",
            b"ENCODING",
            b"",
        ],
        vec![b"FF.APPEND", id, lease, ep, att, b"t", b"p", b"BOGUS"],
        vec![b"FF.APPEND", waiting.as_bytes(), lease, ep, att, b"t", b"p"],
        vec![b"FF.APPEND", missing, lease, ep, att, b"t", b"p"],
        vec![b"FF.FRAMES"],
        vec![b"FF.FRAMES", id],
        vec![b"FF.FRAMES", id, b"x"],
        vec![b"FF.FRAMES", id, b"-1"],
        vec![b"FF.FRAMES", id, b"4294967296"],
        vec![b"FF.FRAMES", id, b"0", b"COUNT", b"0"],
        vec![b"FF.FRAMES", id, b"0", b"COUNT", b"10001"],
        vec![b"FF.FRAMES", id, b"0", b"FROM", b"abc"],
        vec![b"FF.FRAMES", id, b"0", b"FROM", b"1-x"],
        vec![b"FF.FRAMES", id, b"0", b"TO"],
        vec![b"FF.FRAMES", id, b"0", b"BOGUS"],
        vec![b"FF.FRAMES", missing, b"0"],
        vec![b"FF.SUMMARY", id],
        vec![b"FF.SUMMARY", id, b"x"],
        vec![b"FF.SUMMARY", id, b"0", b"extra"],
        vec![b"FF.SUMMARY", missing, b"0"],
        // internal commands refuse clients
        vec![b"FF.ACQUIRE", id, b"w", b"i", b"10", lease, att, b"1"],
        vec![b"FF.LOADREC", b"k", b"Ejunk"],
        vec![b"FF.DUE", b"1", b"1", b"1", b"0", b"100"],
    ];
    // The flow commands, and FF.SUBMIT's FLOW option.
    let p = ptag.as_bytes();
    let q = qtag.as_bytes();
    let (f, f2, done, fr) = (
        fl.as_bytes(),
        fl2.as_bytes(),
        done_fl.as_bytes(),
        far.as_bytes(),
    );
    let (a, b, cm, m2, g) = (
        fa.as_bytes(),
        fb.as_bytes(),
        fc.as_bytes(),
        m2.as_bytes(),
        fg.as_bytes(),
    );
    let (d1, d2) = (d1.as_bytes(), d2.as_bytes());
    let w = waiting.as_bytes();
    let e = edge_id.as_bytes();
    let no_flow_s = format!("{ptag}:00000000-0000-4000-8000-0000000000f1");
    let no_flow = no_flow_s.as_bytes();
    let no_exec_s = format!("{ptag}:00000000-0000-4000-8000-0000000000f2");
    let no_exec = no_exec_s.as_bytes();
    // The flow's uuid under the other partition's tag, and a target of
    // that partition.
    let f_in_q_s = format!("{qtag}:{}", &fl[ptag.len() + 1..]);
    let f_in_q = f_in_q_s.as_bytes();
    let q_exact_s = format!("{qtag}:00000000-0000-4000-8000-0000000000f3");
    let q_exact = q_exact_s.as_bytes();
    let big_value = vec![b'v'; 4097];
    let too_many_tags: Vec<Vec<u8>> = (0..65)
        .flat_map(|i| [format!("app.k{i}").into_bytes(), b"v".to_vec()])
        .collect();
    let mut many_tags: Vec<&[u8]> = vec![b"FF.FLOWSETTAGS", f];
    many_tags.extend(too_many_tags.iter().map(Vec::as_slice));
    let flow_cases: Vec<Vec<&[u8]>> = vec![
        // FF.FLOWCREATE
        vec![b"FF.FLOWCREATE"],
        vec![b"FF.FLOWCREATE", b"nope"],
        vec![b"FF.FLOWCREATE", b"{fp:256}"],
        vec![b"FF.FLOWCREATE", b"{fp:-1}"],
        vec![b"FF.FLOWCREATE", b"{fp:1}:not-a-uuid"],
        vec![b"FF.FLOWCREATE", b"{fp:1}:"],
        vec![b"FF.FLOWCREATE", nul],
        vec![b"FF.FLOWCREATE", bin],
        vec![b"FF.FLOWCREATE", b"plainkey"],
        vec![b"FF.FLOWCREATE", p, b"KIND"],
        vec![b"FF.FLOWCREATE", p, b"KIND", &long_name],
        vec![b"FF.FLOWCREATE", p, b"NAMESPACE"],
        vec![b"FF.FLOWCREATE", p, b"NAMESPACE", &long_name],
        vec![b"FF.FLOWCREATE", p, b"KIND", b"k", b"NAMESPACE"],
        vec![b"FF.FLOWCREATE", p, b"AT", b"1"],
        vec![b"FF.FLOWCREATE", f, b"AT", b"1"],
        vec![b"FF.FLOWCREATE", p, b"BOGUS"],
        vec![b"FF.FLOWCREATE", p, nul],
        vec![b"FF.FLOWCREATE", p, bin, b"x"],
        // FF.FLOWADD
        vec![b"FF.FLOWADD"],
        vec![b"FF.FLOWADD", f],
        vec![b"FF.FLOWADD", b"bad", w],
        vec![b"FF.FLOWADD", p, w],
        vec![b"FF.FLOWADD", nul, w],
        vec![b"FF.FLOWADD", f, b"bad"],
        vec![b"FF.FLOWADD", f, p],
        vec![b"FF.FLOWADD", f, bin],
        vec![b"FF.FLOWADD", f, g],
        vec![b"FF.FLOWADD", f, w, b"AT", b"1"],
        vec![b"FF.FLOWADD", f, w, b"EXTRA"],
        vec![b"FF.FLOWADD", no_flow, w],
        vec![b"FF.FLOWADD", f_in_q, w],
        vec![b"FF.FLOWADD", f, no_exec],
        vec![b"FF.FLOWADD", f, m2],
        vec![b"FF.FLOWADD", f2, a],
        vec![b"FF.FLOWADD", done, w],
        // FF.EDGE
        vec![b"FF.EDGE"],
        vec![b"FF.EDGE", f],
        vec![b"FF.EDGE", f, a],
        vec![b"FF.EDGE", b"bad", a, cm],
        vec![b"FF.EDGE", p, a, cm],
        vec![b"FF.EDGE", f, b"bad", cm],
        vec![b"FF.EDGE", f, a, b"bad"],
        vec![b"FF.EDGE", f, nul, cm],
        vec![b"FF.EDGE", f, a, bin],
        vec![b"FF.EDGE", f, a, g],
        vec![b"FF.EDGE", f, g, cm],
        vec![b"FF.EDGE", f_in_q, a, cm],
        vec![b"FF.EDGE", fr, g, a],
        vec![b"FF.EDGE", f, a, cm, b"EDGE_ID"],
        vec![b"FF.EDGE", f, a, cm, b"EDGE_ID", b"not-a-uuid"],
        vec![b"FF.EDGE", f, a, cm, b"EDGE_ID", f],
        vec![b"FF.EDGE", f, a, cm, b"EDGE_ID", nul],
        vec![b"FF.EDGE", f, a, cm, b"EDGE_ID", e],
        vec![b"FF.EDGE", f, a, cm, b"KIND"],
        vec![b"FF.EDGE", f, a, cm, b"KIND", b"any"],
        vec![b"FF.EDGE", f, a, cm, b"KIND", b"failure_only"],
        vec![b"FF.EDGE", f, a, cm, b"KIND", bin],
        vec![b"FF.EDGE", f, a, cm, b"DATA"],
        vec![b"FF.EDGE", f, a, cm, b"DATA", b""],
        vec![b"FF.EDGE", f, a, cm, b"DATA", &big_value],
        vec![b"FF.EDGE", f, a, cm, b"DATA", &huge],
        vec![b"FF.EDGE", f, a, cm, b"REVISION"],
        vec![b"FF.EDGE", f, a, cm, b"REVISION", b"x"],
        vec![b"FF.EDGE", f, a, cm, b"REVISION", b"-1"],
        vec![b"FF.EDGE", f, a, cm, b"REVISION", b"1.5"],
        vec![b"FF.EDGE", f, a, cm, b"REVISION", b"18446744073709551616"],
        vec![b"FF.EDGE", f, a, cm, b"REVISION", b"0"],
        vec![b"FF.EDGE", f, a, cm, b"AT", b"1"],
        vec![b"FF.EDGE", f, a, cm, b"BOGUS"],
        vec![b"FF.EDGE", f, a, cm, nul],
        vec![b"FF.EDGE", f, a, a],
        vec![b"FF.EDGE", f, b, a],
        vec![b"FF.EDGE", f, a, b],
        vec![b"FF.EDGE", f, a, w],
        vec![b"FF.EDGE", f, w, cm],
        vec![b"FF.EDGE", f, a, m2],
        vec![b"FF.EDGE", no_flow, a, cm],
        vec![b"FF.EDGE", done, d1, d2],
        // FF.EDGEPOLICY
        vec![b"FF.EDGEPOLICY"],
        vec![b"FF.EDGEPOLICY", f, cm],
        vec![b"FF.EDGEPOLICY", b"bad", cm, b"ALL_OF"],
        vec![b"FF.EDGEPOLICY", p, cm, b"ALL_OF"],
        vec![b"FF.EDGEPOLICY", f, b"bad", b"ALL_OF"],
        vec![b"FF.EDGEPOLICY", f, nul, b"ALL_OF"],
        vec![b"FF.EDGEPOLICY", f, g, b"ALL_OF"],
        vec![b"FF.EDGEPOLICY", f, cm, b"SOME_OF"],
        vec![b"FF.EDGEPOLICY", f, cm, b""],
        vec![b"FF.EDGEPOLICY", f, cm, bin],
        vec![b"FF.EDGEPOLICY", f, cm, nul],
        // Refused, but the whole word is echoed back (17 MB here), where
        // the other parsers describe a bad word as `<n bytes>`.
        vec![b"FF.EDGEPOLICY", f, cm, &huge],
        vec![b"FF.EDGEPOLICY", f, cm, b"ANY_OF"],
        vec![b"FF.EDGEPOLICY", f, cm, b"ANY_OF", b"sometimes"],
        vec![b"FF.EDGEPOLICY", f, cm, b"ANY_OF", b"let_run", b"extra"],
        vec![b"FF.EDGEPOLICY", f, cm, b"ANY_OF", b"3", b"let_run"],
        vec![b"FF.EDGEPOLICY", f, cm, b"QUORUM"],
        vec![b"FF.EDGEPOLICY", f, cm, b"QUORUM", b"2"],
        vec![b"FF.EDGEPOLICY", f, cm, b"QUORUM", b"2", b"never"],
        vec![b"FF.EDGEPOLICY", f, cm, b"QUORUM", b"0", b"let_run"],
        vec![b"FF.EDGEPOLICY", f, cm, b"QUORUM", b"10001", b"let_run"],
        vec![
            b"FF.EDGEPOLICY",
            f,
            cm,
            b"QUORUM",
            b"4294967297",
            b"cancel_remaining",
        ],
        vec![
            b"FF.EDGEPOLICY",
            f,
            cm,
            b"QUORUM",
            b"99999999999999999999999",
            b"let_run",
        ],
        vec![b"FF.EDGEPOLICY", f, cm, b"QUORUM", b"x", b"let_run"],
        vec![b"FF.EDGEPOLICY", f, cm, b"QUORUM", b"-1", b"let_run"],
        vec![b"FF.EDGEPOLICY", f, cm, b"QUORUM", b"let_run"],
        vec![b"FF.EDGEPOLICY", f, cm, b"ALL_OF", b"let_run"],
        vec![b"FF.EDGEPOLICY", f, cm, b"ALL_OF", b"AT", b"1"],
        vec![b"FF.EDGEPOLICY", f, b, b"ANY_OF", b"let_run"],
        vec![b"FF.EDGEPOLICY", f, w, b"ALL_OF"],
        vec![b"FF.EDGEPOLICY", no_flow, cm, b"ALL_OF"],
        vec![b"FF.EDGEPOLICY", done, d2, b"ALL_OF"],
        // FF.FLOWSETTAGS
        vec![b"FF.FLOWSETTAGS"],
        vec![b"FF.FLOWSETTAGS", f],
        vec![b"FF.FLOWSETTAGS", f, b"app.k"],
        vec![b"FF.FLOWSETTAGS", f, b"app.k", b"v", b"app.j"],
        vec![b"FF.FLOWSETTAGS", b"bad", b"app.k", b"v"],
        vec![b"FF.FLOWSETTAGS", p, b"app.k", b"v"],
        vec![b"FF.FLOWSETTAGS", f, b"Bad.k", b"v"],
        vec![b"FF.FLOWSETTAGS", f, b"nodot", b"v"],
        vec![b"FF.FLOWSETTAGS", f, b"app.", b"v"],
        vec![b"FF.FLOWSETTAGS", f, b".k", b"v"],
        vec![b"FF.FLOWSETTAGS", f, b"app..k", b"v"],
        vec![b"FF.FLOWSETTAGS", f, b"1app.k", b"v"],
        vec![b"FF.FLOWSETTAGS", f, b"", b"v"],
        vec![b"FF.FLOWSETTAGS", f, nul, b"v"],
        vec![b"FF.FLOWSETTAGS", f, bin, b"v"],
        vec![b"FF.FLOWSETTAGS", f, &long_name, b"v"],
        vec![b"FF.FLOWSETTAGS", f, b"app.ok", b"v", b"app-x.k", b"v"],
        vec![b"FF.FLOWSETTAGS", f, b"app.k", &big_value],
        vec![b"FF.FLOWSETTAGS", f, b"app.k", b"v", b"AT", b"1"],
        vec![b"FF.FLOWSETTAGS", f, b"AT", b"1", b"app.k"],
        many_tags,
        vec![b"FF.FLOWSETTAGS", no_flow, b"app.k", b"v"],
        // FF.CANCELFLOW
        vec![b"FF.CANCELFLOW"],
        vec![b"FF.CANCELFLOW", b"bad"],
        vec![b"FF.CANCELFLOW", p],
        vec![b"FF.CANCELFLOW", nul],
        vec![b"FF.CANCELFLOW", f, b"POLICY"],
        vec![b"FF.CANCELFLOW", f, b"POLICY", b"some"],
        vec![b"FF.CANCELFLOW", f, b"POLICY", b""],
        vec![b"FF.CANCELFLOW", f, b"POLICY", bin],
        vec![b"FF.CANCELFLOW", f, b"REASON"],
        vec![b"FF.CANCELFLOW", f, b"REASON", b""],
        vec![b"FF.CANCELFLOW", f, b"REASON", &big_value],
        vec![b"FF.CANCELFLOW", f, b"REASON", &huge],
        vec![b"FF.CANCELFLOW", f, b"POLICY", b"cancel_all", b"REASON"],
        vec![b"FF.CANCELFLOW", f, b"REASON", b"r", b"POLICY", b"nope"],
        vec![b"FF.CANCELFLOW", f, b"AT", b"1"],
        vec![b"FF.CANCELFLOW", f, b"BOGUS"],
        vec![b"FF.CANCELFLOW", f, nul],
        vec![b"FF.CANCELFLOW", no_flow],
        vec![b"FF.CANCELFLOW", f_in_q],
        // FF.FLOWGET
        vec![b"FF.FLOWGET"],
        vec![b"FF.FLOWGET", f, f],
        vec![b"FF.FLOWGET", b"bad"],
        vec![b"FF.FLOWGET", p],
        vec![b"FF.FLOWGET", b"*"],
        vec![b"FF.FLOWGET", nul],
        vec![b"FF.FLOWGET", bin],
        vec![
            b"FF.FLOWGET",
            b"{fp:256}:00000000-0000-4000-8000-000000000001",
        ],
        // FF.FLOWS
        vec![b"FF.FLOWS"],
        vec![b"FF.FLOWS", b"nope"],
        vec![b"FF.FLOWS", b"*"],
        vec![b"FF.FLOWS", f],
        vec![b"FF.FLOWS", b"{fp:256}"],
        vec![b"FF.FLOWS", nul],
        vec![b"FF.FLOWS", p, b"COUNT"],
        vec![b"FF.FLOWS", p, b"COUNT", b"10001"],
        vec![b"FF.FLOWS", p, b"COUNT", b"x"],
        vec![b"FF.FLOWS", p, b"COUNT", b"-1"],
        vec![b"FF.FLOWS", p, b"COUNT", b"99999999999999999999999"],
        vec![b"FF.FLOWS", p, b"AFTER"],
        vec![b"FF.FLOWS", p, b"AFTER", b"bad"],
        vec![b"FF.FLOWS", p, b"AFTER", p],
        vec![b"FF.FLOWS", p, b"AFTER", nul],
        vec![b"FF.FLOWS", p, b"AT", b"1"],
        vec![b"FF.FLOWS", p, b"BOGUS"],
        vec![b"FF.FLOWS", p, bin],
        vec![b"FF.FLOWS", p, b"COUNT", b"0"],
        vec![b"FF.FLOWS", p, b"AFTER", f_in_q],
        // FF.EDGEGET
        vec![b"FF.EDGEGET"],
        vec![b"FF.EDGEGET", f],
        vec![b"FF.EDGEGET", f, e, e],
        vec![b"FF.EDGEGET", b"bad", e],
        vec![b"FF.EDGEGET", p, e],
        vec![b"FF.EDGEGET", f, b"not-a-uuid"],
        vec![b"FF.EDGEGET", f, a],
        vec![b"FF.EDGEGET", f, b""],
        vec![b"FF.EDGEGET", f, nul],
        vec![b"FF.EDGEGET", f, bin],
        // FF.EDGES
        vec![b"FF.EDGES"],
        vec![b"FF.EDGES", f, a],
        vec![b"FF.EDGES", f, a, b"IN", b"x"],
        vec![b"FF.EDGES", b"bad", a, b"IN"],
        vec![b"FF.EDGES", p, a, b"IN"],
        vec![b"FF.EDGES", f, b"bad", b"IN"],
        vec![b"FF.EDGES", f, e, b"OUT"],
        vec![b"FF.EDGES", f, a, b"SIDEWAYS"],
        vec![b"FF.EDGES", f, a, b""],
        vec![b"FF.EDGES", f, a, bin],
        vec![b"FF.EDGES", f, g, b"IN"],
        vec![b"FF.EDGES", fr, a, b"OUT"],
        // FF.EDGEGROUP
        vec![b"FF.EDGEGROUP"],
        vec![b"FF.EDGEGROUP", f],
        vec![b"FF.EDGEGROUP", f, b, b"x"],
        vec![b"FF.EDGEGROUP", b"bad", b],
        vec![b"FF.EDGEGROUP", p, b],
        vec![b"FF.EDGEGROUP", f, b"bad"],
        vec![b"FF.EDGEGROUP", f, nul],
        vec![b"FF.EDGEGROUP", f, g],
        // FF.SUBMIT ... FLOW
        vec![b"FF.SUBMIT", p, b"q", b"p", b"FLOW"],
        vec![b"FF.SUBMIT", p, b"q", b"p", b"FLOW", b"nope"],
        vec![b"FF.SUBMIT", p, b"q", b"p", b"FLOW", p],
        vec![b"FF.SUBMIT", p, b"q", b"p", b"FLOW", b"*"],
        vec![b"FF.SUBMIT", p, b"q", b"p", b"FLOW", nul],
        vec![b"FF.SUBMIT", p, b"q", b"p", b"FLOW", bin],
        vec![
            b"FF.SUBMIT",
            p,
            b"q",
            b"p",
            b"FLOW",
            b"{fp:256}:00000000-0000-4000-8000-000000000001",
        ],
        vec![b"FF.SUBMIT", q, b"q", b"p", b"FLOW", f],
        vec![b"FF.SUBMIT", q_exact, b"q", b"p", b"FLOW", f],
        vec![b"FF.SUBMIT", p, b"q", b"p", b"FLOW", fr],
        vec![b"FF.SUBMIT", p, b"q", b"p", b"FLOW", no_flow],
        vec![b"FF.SUBMIT", p, b"q", b"p", b"FLOW", f_in_q],
        vec![b"FF.SUBMIT", b"*", b"q", b"p", b"FLOW", f_in_q],
        vec![b"FF.SUBMIT", p, b"q", b"p", b"FLOW", done],
        vec![b"FF.SUBMIT", p, b"q", b"p", b"FLOW", f, b"AT", b"1"],
        vec![b"FF.SUBMIT", p, b"q", b"p", b"FLOW", f, b"PRIORITY", b"x"],
        vec![b"FF.SUBMIT", p, b"q", b"p", b"FLOW", f, b"BOGUS"],
        vec![b"FF.SUBMIT", p, b"q", &huge, b"FLOW", f],
        vec![b"FF.SUBMIT", p, b"", b"p", b"FLOW", f],
        vec![b"FF.SUBMIT", p, b"q", b"p", b"FLOW", f, b"FLOW", no_flow],
    ];
    assert!(flow_cases.len() >= 40);
    for args in cases.iter().chain(&flow_cases) {
        let r = run(&mut c, args);
        assert!(
            r.is_err(),
            "expected an error for {:?}, got {r:?}",
            args.iter()
                .map(|a| String::from_utf8_lossy(&a[..a.len().min(40)]).into_owned())
                .collect::<Vec<_>>()
        );
        let msg = r.unwrap_err().to_string();
        assert!(!msg.is_empty());
    }
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    assert_eq!(digest(&mut c), before, "bad input changed nothing");
    // A string at a partition's key is WRONGTYPE for its executions, not a
    // crash.
    let other = (0..256)
        .map(|p| format!("{{fp:{p}}}"))
        .find(|t| *t != tag_of(&j.id) && *t != tag_of(&waiting) && *t != qtag)
        .unwrap();
    let fake = format!("{other}:00000000-0000-4000-8000-000000000002");
    let _: String = redis::cmd("SET")
        .arg(format!("ff:idx:{other}"))
        .arg("v")
        .query(&mut c)
        .unwrap();
    let fake = fake.as_str();
    let e = redis::cmd("FF.GET")
        .arg(fake)
        .query::<redis::Value>(&mut c)
        .unwrap_err();
    assert_eq!(e.code(), Some("WRONGTYPE"));
    let e = redis::cmd("FF.SUBMIT")
        .arg(fake)
        .arg("q")
        .arg("p")
        .query::<redis::Value>(&mut c)
        .unwrap_err();
    assert_eq!(e.code(), Some("WRONGTYPE"));
    // So is it for every flow command naming that partition.
    let other_flow = format!("{other}:00000000-0000-4000-8000-000000000003");
    let (x, y) = (
        format!("{other}:00000000-0000-4000-8000-000000000004"),
        format!("{other}:00000000-0000-4000-8000-000000000005"),
    );
    let of = other_flow.as_str();
    let flow_wrongtype: Vec<Vec<&str>> = vec![
        vec!["FF.FLOWCREATE", &other],
        vec!["FF.FLOWCREATE", of],
        vec!["FF.FLOWGET", of],
        vec!["FF.FLOWS", &other],
        vec!["FF.FLOWADD", of, &x],
        vec!["FF.EDGE", of, &x, &y],
        vec!["FF.EDGEPOLICY", of, &y, "ALL_OF"],
        vec!["FF.FLOWSETTAGS", of, "app.k", "v"],
        vec!["FF.CANCELFLOW", of],
        vec!["FF.EDGEGET", of, "00000000-0000-4000-8000-000000000006"],
        vec!["FF.EDGES", of, &x, "IN"],
        vec!["FF.EDGEGROUP", of, &y],
        vec!["FF.SUBMIT", &other, "q", "p", "FLOW", of],
        vec!["FF.SUBMIT", "*", "q", "p", "FLOW", of],
    ];
    for args in &flow_wrongtype {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let e = run(&mut c, &bytes).unwrap_err();
        assert_eq!(e.code(), Some("WRONGTYPE"), "{args:?}: {e}");
    }
    // The flows are as they were: a's edge to b alone, b still held back.
    let g = pairs(
        redis::cmd("FF.EDGEGROUP")
            .arg(&fl)
            .arg(&fb)
            .query(&mut c)
            .unwrap(),
    );
    assert_eq!(n(&g, "total_deps"), 1);
    assert_eq!(s(&get(&mut c, &fb), "public_state"), "waiting_children");
    // And the active job is still completable.
    assert_eq!(complete(&mut c, &j, None).unwrap(), "OK");
}

#[test]
fn client_bytes_round_trip_unchanged() {
    let srv = Server::start(&[]);
    let mut c = srv.conn();
    let payload: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let id: String = redis::cmd("FF.SUBMIT")
        .arg("*")
        .arg("q")
        .arg(&payload)
        .arg("NAMESPACE")
        .arg(b"n\0s\xff".as_slice())
        .arg("TAG")
        .arg(b"k\0".as_slice())
        .arg(b"\xff\x00v".as_slice())
        .query(&mut c)
        .unwrap();
    let j = claim(&mut c, "w\u{e9}", &["q"], &[]).unwrap();
    assert_eq!(j.id, id);
    assert_eq!(j.payload, payload);
    let f = get(&mut c, &id);
    let ns: Vec<u8> = redis::from_redis_value(&f["namespace"]).unwrap();
    assert_eq!(ns, b"n\0s\xff");
    // A binary frame comes back from the stream byte for byte.
    let frame: Vec<u8> = (0..=255u8).collect();
    let _: redis::Value = fenced("FF.APPEND", &j)
        .arg(b"t\0\xff".as_slice())
        .arg(&frame)
        .query(&mut c)
        .unwrap();
    type Entry = (String, Vec<(Vec<u8>, Vec<u8>)>);
    let entries: Vec<Entry> = redis::cmd("XRANGE")
        .arg(format!("ff:stream:{id}:0"))
        .arg("-")
        .arg("+")
        .query(&mut c)
        .unwrap();
    assert_eq!(entries[0].1[0], (b"type".to_vec(), b"t\0\xff".to_vec()));
    assert_eq!(entries[0].1[1], (b"payload".to_vec(), frame));
    let result = b"r\0\xff".as_slice();
    let _: String = fenced("FF.COMPLETE", &j)
        .arg("RESULT")
        .arg(result)
        .query(&mut c)
        .unwrap();
    let got: Vec<u8> = redis::cmd("FF.RESULT").arg(&id).query(&mut c).unwrap();
    assert_eq!(got, result);
}
