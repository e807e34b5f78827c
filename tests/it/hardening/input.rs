//! Bad input. The inventory parser gets thousands of mutated inventories (bytes flipped,
//! inserted, deleted; lines repeated, swapped, cut; BOMs and invalid UTF-8) and never panics:
//! each is either valid or refused with problems that all name a line of the file. (The
//! property tests in `src/inventory/parse/proptests.rs` generate CSV-ish text from tokens;
//! this test starts from real inventories instead. The 100,000-row figure is
//! `inventory::a_100000_row_inventory_validates`.)
//!
//! The API side: a fleet run against a simulator that garbles runs of answers (cut JSON, an
//! HTML page, an empty body, a body cut short of its length) ends every site correctly, with
//! no task created twice. The client-level cases (malformed JSON, truncated and oversized
//! bodies, HTML and wrong content types) are `client::faults`.

use std::path::Path;

use super::*;
use crate::support::fleet::{Fleet, Row};

/// A literal secret where a reference belongs: it must be refused and never echoed.
const LITERAL_SECRET: &str = "lit3ralSecretValue9Q";

/// xorshift64*: a seeded, dependency-free source of mutations.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seed_inventories() -> Vec<Vec<u8>> {
    let header = "site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_token,keys,users,apps,global_entities,wave,name";
    let rows = [
        "acme-jira,jira,https://jira.acme.example,BXXX-1111-2222-3333,env:ACME_PAT,https://acme.atlassian.net,admin@acme.example,env:ACME_TOKEN,ABC;DEF,all,com.example.app,,wave-1,ACME Jira",
        "acme-wiki,confluence,https://wiki.acme.example,BYYY-1111-2222-3333,basic:migrator:file:/run/secrets/wiki,https://acme.atlassian.net,admin@acme.example,env:ACME_TOKEN,ENG;~jdoe,none,,GLOBAL_PAGE_TEMPLATES,wave-1,",
        "\"globex,jira\",jira,http://127.0.0.1:8080/servers/globex,globex,env:GLOBEX_PAT,https://globex.atlassian.net,ops@globex.example,env:GLOBEX_TOKEN,,all,,,wave-2,\"Globex \"\"main\"\"\"",
    ];
    let mut valid = format!("{header}\n");
    for row in rows {
        valid.push_str(row);
        valid.push('\n');
    }
    let literal = valid.replace("env:GLOBEX_TOKEN", LITERAL_SECRET);
    let demo = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/demo.csv"))
        .expect("inventories/demo.csv");
    vec![valid.into_bytes(), literal.into_bytes(), demo]
}

/// Pieces worth inserting: CSV syntax, line ends, BOMs, invalid UTF-8, values of each kind.
const SPLICES: &[&[u8]] = &[
    b",",
    b"\"",
    b"\n",
    b"\r\n",
    b"\r",
    b"#",
    b";",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\x00",
    b"jira",
    b"confluence",
    b"env:",
    b"file:/etc/shadow",
    b"basic::",
    b"http://10.0.0.1",
    b"https://",
    b"\xe2\x80\xae",
    b"site",
    b"~",
];

fn mutate(dice: &mut Dice, input: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..=dice.below(4) {
        let at = dice.below(bytes.len() + 1);
        match dice.below(8) {
            0 if !bytes.is_empty() => {
                let at = at.min(bytes.len() - 1);
                bytes[at] ^= 1 << dice.below(8);
            }
            1 => {
                let splice = SPLICES[dice.below(SPLICES.len())];
                bytes.splice(at..at, splice.iter().copied());
            }
            2 => {
                let end = (at + dice.below(40)).min(bytes.len());
                bytes.drain(at..end);
            }
            3 => bytes.truncate(at),
            4 | 5 => {
                // Repeat, drop or swap whole lines.
                let mut lines: Vec<Vec<u8>> =
                    bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
                let a = dice.below(lines.len());
                let b = dice.below(lines.len());
                match dice.below(3) {
                    0 => {
                        let copy = lines[a].clone();
                        lines.insert(b, copy);
                    }
                    1 if lines.len() > 1 => {
                        lines.remove(a);
                    }
                    _ => lines.swap(a, b),
                }
                bytes = lines.join(&b'\n');
            }
            6 => {
                let byte = (dice.next() & 0xff) as u8;
                bytes.insert(at, byte);
            }
            _ => {
                let end = (at + dice.below(30)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                let to = dice.below(bytes.len() + 1);
                bytes.splice(to..to, copy);
            }
        }
    }
    bytes
}

#[test]
fn thousands_of_mutated_inventories_never_panic_and_every_problem_has_a_line() {
    const INPUTS: usize = 2000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.csv");
    let seeds = seed_inventories();
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let (mut valid, mut refused, mut problems_seen) = (0usize, 0usize, 0usize);
    for case in 0..INPUTS {
        let input = mutate(&mut dice, &seeds[case % seeds.len()]);
        std::fs::write(&path, &input).unwrap();
        let outcome = std::panic::catch_unwind(|| cmafleet::inventory::load(&path));
        let result = outcome.unwrap_or_else(|_| {
            panic!(
                "case {case}: the parser panicked on:\n{}",
                String::from_utf8_lossy(&input)
            )
        });
        match result {
            Ok(_) => valid += 1,
            Err(cmafleet::inventory::InventoryError::Invalid { problems, .. }) => {
                refused += 1;
                assert!(
                    !problems.is_empty(),
                    "case {case}: refused without a problem"
                );
                let last_line = input.iter().filter(|b| **b == b'\n').count() + 1;
                for problem in &problems {
                    problems_seen += 1;
                    assert!(
                        (1..=last_line).contains(&problem.line),
                        "case {case}: line {} outside 1..={last_line}: {problem}\n{}",
                        problem.line,
                        String::from_utf8_lossy(&input)
                    );
                    assert!(!problem.message.trim().is_empty(), "case {case}");
                    assert!(
                        !problem.to_string().contains(LITERAL_SECRET),
                        "case {case}: a literal secret is never echoed: {problem}\n{}",
                        String::from_utf8_lossy(&input)
                    );
                }
            }
            Err(other) => panic!("case {case}: an existing file could not be read: {other}"),
        }
    }
    // The mutations reach both sides of the parser.
    assert!(valid >= 100, "{valid} valid of {INPUTS}");
    assert!(refused >= 1000, "{refused} refused of {INPUTS}");
    eprintln!(
        "figures: {INPUTS} mutated inventories: {valid} valid, {refused} refused with {problems_seen} problems"
    );
}

/// Garbled answers on every server (every 5th request: each kind in turn): reads are tried
/// again, creates whose answer was garbled are reconciled from the task list (a job create
/// is sent again: jobs cannot be listed); every site migrates, no task twice, no panic.
/// (Two job creates garbled in a row end the site instead: `first_contact`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_answering_garbage_for_a_while_never_breaks_the_run() {
    let scenario = r#"
        seed = 21
        [defaults.faults]
        garbage_every = 5
        garbage_length = 1
    "#;
    let rows = vec![
        Row::jira("acme"),
        Row::jira("globex"),
        Row::confluence("initech"),
        Row::jira("umbrella").user("bob@example.com"),
    ];
    let fleet = Fleet::start(scenario, 3600.0, rows).await;
    let run = fleet.run("migrate", "run", &["--precheck"]).await;
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_all_succeeded(&fleet, "run", &run);
    assert_no_duplicate_tasks(&fleet).await;
    let counters = fleet.counters().await;
    assert!(
        counters.faults.garbage_answers >= 8,
        "the scenario garbled answers: {:?}",
        counters.faults
    );
    assert_eq!(counters.task_creates.total, 8);
    eprintln!(
        "figures: garbage: {} garbled answers, {} requests",
        counters.faults.garbage_answers, counters.total
    );
}
