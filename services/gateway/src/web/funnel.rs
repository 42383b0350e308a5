//! A live sequence in numbers, per step: the funnel automations computes, put in words, and what
//! an edit would do to the contacts standing in it, said before it is saved.

use meisa_proto::automations::{ReasonCount, SequenceStats};

use super::sequences::{Step, UNITS};

/// One row of the funnel table.
pub struct FunnelRow {
    pub number: usize,
    pub what: String,
    pub entered: u64,
    pub here_now: u64,
    pub sent: u64,
    /// "2 (suppressed)", or empty.
    pub skipped: String,
    pub failed: String,
    pub left: String,
}

/// A step in words: "Email “Welcome”", "Wait 2 days".
pub fn describe(step: &Step, templates: &[(String, String)]) -> String {
    if step.kind == "wait" {
        let unit = UNITS
            .iter()
            .find(|(k, _)| *k == step.unit)
            .map_or(step.unit.as_str(), |(_, words)| words);
        let unit = if step.amount.trim() == "1" {
            unit.strip_suffix('s').unwrap_or(unit)
        } else {
            unit
        };
        return format!("Wait {} {unit}", step.amount.trim());
    }
    let name = templates
        .iter()
        .find(|(id, _)| *id == step.template_id)
        .map_or(step.template_id.as_str(), |(_, name)| name.as_str());
    format!("Email “{name}”")
}

/// An exit reason or a mailer status in plain words.
fn reason_words(reason: &str) -> String {
    match reason {
        "exit_when" => "exit conditions held".into(),
        "unsubscribed" => "unsubscribed".into(),
        "contact_deleted" => "contact deleted".into(),
        "exit_action" => "an automation took them out".into(),
        "sequence_deleted" => "sequence deleted".into(),
        other => other.replace('_', " "),
    }
}

/// "3 (suppressed 2, skipped 1)", or empty when nothing is counted.
fn counted(reasons: &[ReasonCount]) -> String {
    let total: u64 = reasons.iter().map(|r| r.count).sum();
    if total == 0 {
        return String::new();
    }
    let parts: Vec<String> = reasons
        .iter()
        .map(|r| format!("{} {}", reason_words(&r.reason), r.count))
        .collect();
    format!("{total} ({})", parts.join(", "))
}

/// The funnel of the saved steps (the stats describe positions of the saved definition).
pub fn rows(
    saved: &[Step],
    stats: &SequenceStats,
    templates: &[(String, String)],
) -> Vec<FunnelRow> {
    saved
        .iter()
        .zip(&stats.steps)
        .enumerate()
        .map(|(i, (step, s))| FunnelRow {
            number: i + 1,
            what: describe(step, templates),
            entered: s.entered,
            here_now: s.here_now,
            sent: s.sent,
            skipped: counted(&s.skipped),
            failed: counted(&s.failed),
            left: counted(&s.exited),
        })
        .collect()
}

fn contacts(n: u64) -> String {
    if n == 1 {
        "1 contact".into()
    } else {
        format!("{n} contacts")
    }
}

/// What saving `edited` in place of `saved` does to contacts in flight: each enrollment keeps its
/// step position, so whoever will run position `i` next runs the edited step there. Empty when
/// nobody is affected.
pub fn impact(
    saved: &[Step],
    edited: &[Step],
    stats: &SequenceStats,
    templates: &[(String, String)],
) -> Vec<String> {
    let mut out = Vec::new();
    for s in &stats.steps {
        let Ok(i) = usize::try_from(s.index) else {
            continue;
        };
        if s.next == 0 {
            continue;
        }
        let (old, new) = (saved.get(i), edited.get(i));
        if old == new {
            continue;
        }
        let was = old.map_or_else(String::new, |o| describe(o, templates));
        out.push(match new {
            Some(n) => format!(
                "{} will next get step {}: {} instead of {was}.",
                contacts(s.next),
                i + 1,
                describe(n, templates)
            ),
            None => format!(
                "{} waiting for step {} ({was}) will finish the sequence without it.",
                contacts(s.next),
                i + 1
            ),
        });
    }
    if stats.finishing > 0
        && let Some(n) = edited.get(saved.len())
    {
        out.push(format!(
            "{} in the last wait will go on to step {} ({}) instead of finishing.",
            contacts(stats.finishing),
            saved.len() + 1,
            describe(n, templates)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use meisa_proto::automations::StepStats;

    fn email(t: &str) -> Step {
        Step {
            kind: "email".into(),
            template_id: t.into(),
            ..Step::default()
        }
    }

    fn wait() -> Step {
        Step {
            kind: "wait".into(),
            amount: "1".into(),
            unit: "d".into(),
            ..Step::default()
        }
    }

    fn stats(next: &[u64], finishing: u64) -> SequenceStats {
        SequenceStats {
            steps: (0u32..)
                .zip(next)
                .map(|(index, &next)| StepStats {
                    index,
                    next,
                    ..StepStats::default()
                })
                .collect(),
            finishing,
            ..SequenceStats::default()
        }
    }

    fn names() -> Vec<(String, String)> {
        vec![
            ("tpl_a".into(), "Welcome".into()),
            ("tpl_b".into(), "Tips".into()),
        ]
    }

    #[test]
    fn a_reorder_names_who_gets_which_step_next() {
        let saved = [email("tpl_a"), wait(), email("tpl_b")];
        let edited = [email("tpl_a"), email("tpl_b"), wait()];
        let said = impact(&saved, &edited, &stats(&[0, 0, 3], 0), &names());
        assert_eq!(
            said,
            ["3 contacts will next get step 3: Wait 1 day instead of Email “Tips”."]
        );
    }

    #[test]
    fn removing_the_step_they_wait_for_and_adding_after_a_final_wait_are_both_said() {
        let saved = [email("tpl_a"), email("tpl_b")];
        let said = impact(&saved, &[email("tpl_a")], &stats(&[0, 1], 0), &names());
        assert_eq!(
            said,
            ["1 contact waiting for step 2 (Email “Tips”) will finish the sequence without it."]
        );
        let saved = [email("tpl_a"), wait()];
        let edited = [email("tpl_a"), wait(), email("tpl_b")];
        let said = impact(&saved, &edited, &stats(&[0, 0], 2), &names());
        assert_eq!(
            said,
            [
                "2 contacts in the last wait will go on to step 3 (Email “Tips”) instead of finishing."
            ]
        );
    }

    #[test]
    fn an_edit_where_nobody_stands_says_nothing() {
        let saved = [email("tpl_a"), email("tpl_b")];
        assert!(impact(&saved, &[email("tpl_b")], &stats(&[0, 0], 0), &names()).is_empty());
    }
}
