//! Workloads: named sets of prompts.
//!
//! Five built-in sets were written for augur, each at least eight realistic
//! prompts long, because the strategies' speedups depend on the kind of text
//! far more than on anything else:
//! - `code`: write new code (the default target is a coding model);
//! - `chat`: answer everyday questions (little to copy from the prompt);
//! - `edit`: return given code with a small change (copy-heavy: prompt lookup
//!   and lookahead shine here);
//! - `summarize`: summarize or extract from a given text (some copying);
//! - `mixed`: copy given text and write new text around it (extend a
//!   function, fix and explain, answer then quote, translate and comment).
//!
//! `humaneval` uses the 164 HumanEval problems as plain code-completion
//! prompts (no chat template), and `--prompts FILE.jsonl` reads one JSON object
//! per line with string fields `"id"` and `"prompt"` (and an optional boolean
//! `"chat"`).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::Serialize;

use crate::BenchError;

const CODE: &str = include_str!("../data/code.txt");
const CHAT: &str = include_str!("../data/chat.txt");
const EDIT: &str = include_str!("../data/edit.txt");
const SUMMARIZE: &str = include_str!("../data/summarize.txt");
const MIXED: &str = include_str!("../data/mixed.txt");

/// One prompt of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prompt {
    /// A stable identifier, unique within its workload.
    pub id: String,
    /// The prompt text (the user message when the chat template applies).
    pub text: String,
    /// Whether this prompt is a user message (wrapped in the chat template
    /// when chat is on) rather than raw text to continue.
    pub chat: bool,
}

/// A named set of prompts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// The workload's name in reports.
    pub name: String,
    /// Its prompts, in order.
    pub prompts: Vec<Prompt>,
}

/// The workloads `--workload` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// Writing new code.
    Code,
    /// Everyday questions and answers.
    Chat,
    /// Returning given code with a small change (copy-heavy).
    Edit,
    /// Summarizing or extracting from a given text.
    Summarize,
    /// Requests that copy given text and write new text around it.
    Mixed,
    /// HumanEval's 164 code-completion prompts (fetched once and cached).
    HumanEval,
}

impl WorkloadKind {
    /// The built-in prompt sets, in report order.
    pub const BUILT_IN: &'static [WorkloadKind] = &[
        WorkloadKind::Code,
        WorkloadKind::Chat,
        WorkloadKind::Edit,
        WorkloadKind::Summarize,
        WorkloadKind::Mixed,
    ];

    /// Every workload, `all` expanded.
    pub const ALL: &'static [WorkloadKind] = &[
        WorkloadKind::Code,
        WorkloadKind::Chat,
        WorkloadKind::Edit,
        WorkloadKind::Summarize,
        WorkloadKind::Mixed,
        WorkloadKind::HumanEval,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Code => "code",
            WorkloadKind::Chat => "chat",
            WorkloadKind::Edit => "edit",
            WorkloadKind::Summarize => "summarize",
            WorkloadKind::Mixed => "mixed",
            WorkloadKind::HumanEval => "humaneval",
        }
    }

    /// Parses a `--workload` value: one name, `all`, or several separated by
    /// commas; duplicates are dropped, order kept.
    pub fn parse_list(values: &[String]) -> Result<Vec<WorkloadKind>, BenchError> {
        let mut out = Vec::new();
        for value in values {
            for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let kinds: Vec<WorkloadKind> = if name.eq_ignore_ascii_case("all") {
                    Self::ALL.to_vec()
                } else {
                    vec![name.parse()?]
                };
                for k in kinds {
                    if !out.contains(&k) {
                        out.push(k);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The workload's prompts. HumanEval is read from
    /// `augur::models::dataset_human_eval()` (fetched on first use).
    pub fn load(self) -> Result<Workload, BenchError> {
        let text = match self {
            WorkloadKind::Code => CODE,
            WorkloadKind::Chat => CHAT,
            WorkloadKind::Edit => EDIT,
            WorkloadKind::Summarize => SUMMARIZE,
            WorkloadKind::Mixed => MIXED,
            WorkloadKind::HumanEval => {
                let path = augur::models::dataset_human_eval().map_err(augur::AugurError::from)?;
                return human_eval_file(&path);
            }
        };
        Ok(Workload {
            name: self.name().to_string(),
            prompts: parse_prompt_text(text, true),
        })
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WorkloadKind {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                BenchError::Spec(format!(
                    "unknown workload '{s}'; choose from: code, chat, edit, summarize, mixed, humaneval, all"
                ))
            })
    }
}

/// Parses the built-in prompt format: each prompt starts with a line
/// `### <id>` and runs to the next such line (trailing blank lines dropped).
pub fn parse_prompt_text(text: &str, chat: bool) -> Vec<Prompt> {
    let mut prompts = Vec::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    let finish = |cur: Option<(String, Vec<&str>)>, prompts: &mut Vec<Prompt>| {
        if let Some((id, lines)) = cur {
            let body = lines.join("\n").trim_end().to_string();
            if !body.is_empty() {
                prompts.push(Prompt {
                    id,
                    text: body,
                    chat,
                });
            }
        }
    };
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("### ") {
            finish(current.take(), &mut prompts);
            current = Some((id.trim().to_string(), Vec::new()));
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line);
        }
    }
    finish(current, &mut prompts);
    prompts
}

/// Parses a JSONL prompts file: one JSON object per line with a string id
/// field `id_field`, a string `"prompt"`, and an optional boolean `"chat"`
/// (default `chat_default`). Blank lines are skipped; anything else that is
/// not such an object is an error naming `file` and the 1-based line. Ids
/// must be unique.
pub fn parse_jsonl(
    text: &str,
    file: &str,
    id_field: &str,
    chat_default: bool,
) -> Result<Vec<Prompt>, BenchError> {
    let mut prompts: Vec<Prompt> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let err = |reason: String| BenchError::PromptLine {
            file: file.to_string(),
            line: i + 1,
            reason,
        };
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| err("expected a JSON object with \"id\" and \"prompt\"".into()))?;
        let id = match obj.get(id_field) {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(_) => return Err(err(format!("\"{id_field}\" must be a non-empty string"))),
            None => return Err(err(format!("missing \"{id_field}\""))),
        };
        let text = match obj.get("prompt") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => return Err(err("\"prompt\" must be a non-empty string".into())),
            None => return Err(err("missing \"prompt\"".into())),
        };
        let chat = match obj.get("chat") {
            None => chat_default,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(_) => return Err(err("\"chat\" must be true or false".into())),
        };
        if prompts.iter().any(|p| p.id == id) {
            return Err(err(format!("duplicate id \"{id}\"")));
        }
        prompts.push(Prompt { id, text, chat });
    }
    Ok(prompts)
}

fn read(path: &Path) -> Result<String, BenchError> {
    std::fs::read_to_string(path).map_err(|source| BenchError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// A workload from a `--prompts` JSONL file, named after the file's stem.
pub fn prompts_file(path: &Path) -> Result<Workload, BenchError> {
    let text = read(path)?;
    let prompts = parse_jsonl(&text, &path.display().to_string(), "id", true)?;
    let name = path
        .file_stem()
        .map_or_else(|| "prompts".into(), |s| s.to_string_lossy().into_owned());
    if prompts.is_empty() {
        return Err(BenchError::EmptyWorkload(name));
    }
    Ok(Workload { name, prompts })
}

/// The HumanEval workload from its JSONL file (ids from `"task_id"`; raw
/// code completion, never the chat template).
pub fn human_eval_file(path: &Path) -> Result<Workload, BenchError> {
    let text = read(path)?;
    let prompts = parse_jsonl(&text, &path.display().to_string(), "task_id", false)?;
    Ok(Workload {
        name: WorkloadKind::HumanEval.name().to_string(),
        prompts,
    })
}

impl Workload {
    /// Keeps the first `limit` prompts.
    pub fn limit(mut self, limit: Option<usize>) -> Self {
        if let Some(k) = limit {
            self.prompts.truncate(k);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn built_in_sets_have_enough_distinct_prompts() {
        for &k in WorkloadKind::BUILT_IN {
            let w = k.load().unwrap();
            assert!(w.prompts.len() >= 8, "{k}: {}", w.prompts.len());
            let mut ids: Vec<&str> = w.prompts.iter().map(|p| p.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), w.prompts.len(), "{k}: duplicate ids");
            for p in &w.prompts {
                assert!(p.text.len() > 40, "{k}/{}: too short", p.id);
                assert!(!p.text.contains("### "), "{k}/{}: header leaked", p.id);
                assert!(p.chat);
            }
        }
        // Copy-heavy prompts carry the code to copy.
        let edit = WorkloadKind::Edit.load().unwrap();
        assert!(edit.prompts.iter().all(|p| p.text.contains("```")));
        // Mixed prompts carry a fenced given text to copy, at least 15 lines.
        let mixed = WorkloadKind::Mixed.load().unwrap();
        for p in &mixed.prompts {
            assert!(p.id.starts_with("mixed-"), "mixed/{}: id prefix", p.id);
            let blocks: Vec<&str> = p.text.split("```").collect();
            assert!(blocks.len() >= 3, "mixed/{}: no fenced block", p.id);
            let given = blocks[1].lines().count();
            assert!(given >= 15, "mixed/{}: given text {given} lines", p.id);
        }
    }

    #[test]
    fn prompt_text_format() {
        let p = parse_prompt_text(
            "ignored\n### a\nline 1\n\nline 2\n\n### b\nx\n### empty\n",
            false,
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].id, "a");
        assert_eq!(p[0].text, "line 1\n\nline 2");
        assert_eq!(p[1].text, "x");
        assert!(!p[1].chat);
    }

    #[test]
    fn jsonl_reads_ids_prompts_and_chat() {
        let text = "{\"id\": \"one\", \"prompt\": \"hello\"}\n\n{\"id\": 2, \"prompt\": \"x\", \"chat\": false}\n";
        let p = parse_jsonl(text, "f.jsonl", "id", true).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].id, "one");
        assert!(p[0].chat);
        assert_eq!(p[1].id, "2");
        assert!(!p[1].chat);
    }

    #[test]
    fn jsonl_errors_name_the_line() {
        let cases = [
            (
                "{\"id\":\"a\",\"prompt\":\"x\"}\nnot json\n",
                2,
                "not valid JSON",
            ),
            ("[1, 2]\n", 1, "expected a JSON object"),
            ("{\"prompt\":\"x\"}\n", 1, "missing \"id\""),
            ("{\"id\":\"a\"}\n", 1, "missing \"prompt\""),
            ("{\"id\":\"a\",\"prompt\":3}\n", 1, "\"prompt\" must be"),
            (
                "{\"id\":\"a\",\"prompt\":\"x\",\"chat\":\"yes\"}\n",
                1,
                "\"chat\" must be",
            ),
            (
                "{\"id\":\"a\",\"prompt\":\"x\"}\n\n{\"id\":\"a\",\"prompt\":\"y\"}\n",
                3,
                "duplicate id",
            ),
        ];
        for (text, line, what) in cases {
            let e = parse_jsonl(text, "p.jsonl", "id", true)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(&format!("p.jsonl:{line}: ")), "{e}");
            assert!(e.contains(what), "{e}");
        }
    }

    #[test]
    fn workload_lists() {
        let all = WorkloadKind::parse_list(&["all".into()]).unwrap();
        assert_eq!(all, WorkloadKind::ALL);
        let two = WorkloadKind::parse_list(&["edit,code".into(), "edit".into()]).unwrap();
        assert_eq!(two, vec![WorkloadKind::Edit, WorkloadKind::Code]);
        let e = WorkloadKind::parse_list(&["poetry".into()]).unwrap_err();
        assert!(e.to_string().contains("unknown workload 'poetry'"));
    }
}
