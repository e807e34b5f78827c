//! Fuzzes the inventory parser: any bytes (read as `cmafleet::inventory::load` would, with
//! invalid UTF-8 replaced) must parse into sites or into problems that each name a line of
//! the text and say something — never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match cmafleet::inventory::parse(&text) {
        Ok(sites) => {
            for site in &sites {
                assert!(!site.name.is_empty(), "a site without a name");
            }
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "refused without a problem");
            let last_line = text.matches('\n').count() + 1;
            for problem in &problems {
                assert!(
                    (1..=last_line).contains(&problem.line),
                    "line {} outside 1..={last_line}: {problem}",
                    problem.line
                );
                assert!(!problem.message.trim().is_empty(), "an empty message");
            }
        }
    }
});
