//! A sequence's funnel: for every step, how many enrollments reached it, stand at it now, were
//! sent its email or skipped it, and left at it. Pure: it reads counts grouped by the store and
//! places each group at a step of the current definition.
//!
//! Where an enrollment stands follows from how the scheduler moves it: a wait step advances
//! `current_step` past itself when it starts and sets the wake-up time, so an enrollment whose
//! previous step is a wait and whose wake-up is still ahead stands *in that wait*; one that left
//! while waiting (or when the wait ended and the exit conditions held) left at the wait.

use std::collections::BTreeMap;

use super::Step;

/// Enrollments with the same status, step index and "still waiting" flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrollmentGroup {
    pub status: GroupStatus,
    pub current_step: u32,
    /// Active, and its next run is in the future.
    pub waiting: bool,
    pub exit_reason: String,
    pub count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupStatus {
    Active,
    Completed,
    Exited,
}

/// Step outcomes recorded in the activity log for one step index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepGroup {
    pub step_index: u32,
    pub outcome: StepOutcome,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    Sent,
    /// The mailer answered without sending; the reason is its status ("suppressed", ...).
    Skipped(String),
    Failed(String),
    /// A wait that started, or anything else that is not an email's outcome.
    Other,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepFunnel {
    pub entered: u64,
    pub here_now: u64,
    pub sent: u64,
    pub skipped: BTreeMap<String, u64>,
    pub failed: BTreeMap<String, u64>,
    pub exited: BTreeMap<String, u64>,
    /// Active enrollments whose next step to run is this index.
    pub next: u64,
}

/// The funnel of each step of `steps`. Groups at an index the definition no longer has (steps
/// were removed) count at the last step, so every enrollment is somewhere.
pub fn funnel(
    steps: &[Step],
    enrollments: &[EnrollmentGroup],
    outcomes: &[StepGroup],
) -> Vec<StepFunnel> {
    let mut out = vec![StepFunnel::default(); steps.len()];
    let Some(last) = steps.len().checked_sub(1) else {
        return out;
    };
    let at = |i: u32| usize::try_from(i).map_or(last, |i| i.min(last));
    let after_wait = |c: u32| {
        usize::try_from(c)
            .ok()
            .and_then(|c| c.checked_sub(1))
            .and_then(|p| steps.get(p))
            .is_some_and(|s| matches!(s, Step::Wait(_)))
    };
    for g in enrollments {
        // The step the group stands at (or left at); completed ones passed every step.
        let stand = match g.status {
            GroupStatus::Completed => None,
            GroupStatus::Active if g.waiting && after_wait(g.current_step) => {
                Some(at(g.current_step - 1))
            }
            GroupStatus::Active => Some(at(g.current_step)),
            GroupStatus::Exited if after_wait(g.current_step) => Some(at(g.current_step - 1)),
            GroupStatus::Exited => Some(at(g.current_step)),
        };
        let reached = stand.map_or(last, |s| s);
        for f in &mut out[..=reached] {
            f.entered += g.count;
        }
        match (g.status, stand) {
            (GroupStatus::Active, Some(s)) => {
                out[s].here_now += g.count;
                if let Ok(c) = usize::try_from(g.current_step)
                    && let Some(f) = out.get_mut(c)
                {
                    f.next += g.count;
                }
            }
            (GroupStatus::Exited, Some(s)) => {
                *out[s].exited.entry(g.exit_reason.clone()).or_default() += g.count;
            }
            _ => {}
        }
    }
    for o in outcomes {
        let Some(f) = usize::try_from(o.step_index)
            .ok()
            .and_then(|i| out.get_mut(i))
        else {
            continue;
        };
        match &o.outcome {
            StepOutcome::Sent => f.sent += o.count,
            StepOutcome::Skipped(r) => *f.skipped.entry(r.clone()).or_default() += o.count,
            StepOutcome::Failed(r) => *f.failed.entry(r.clone()).or_default() += o.count,
            StepOutcome::Other => {}
        }
    }
    out
}

/// Active enrollments whose step index is past the last step: inside a final wait, about to
/// finish.
pub fn finishing(steps: &[Step], enrollments: &[EnrollmentGroup]) -> u64 {
    enrollments
        .iter()
        .filter(|g| {
            g.status == GroupStatus::Active
                && usize::try_from(g.current_step).map_or(true, |c| c >= steps.len())
        })
        .map(|g| g.count)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use meisa_conditions::Duration;

    fn email() -> Step {
        Step::Email {
            template_id: "tpl_a".into(),
        }
    }

    fn wait() -> Step {
        Step::Wait(Duration::parse("1d").expect("a duration"))
    }

    fn group(status: GroupStatus, current_step: u32, waiting: bool, count: u64) -> EnrollmentGroup {
        EnrollmentGroup {
            status,
            current_step,
            waiting,
            exit_reason: if status == GroupStatus::Exited {
                "exit_when".into()
            } else {
                String::new()
            },
            count,
        }
    }

    #[test]
    fn a_contact_inside_a_wait_stands_at_the_wait_not_at_the_next_email() {
        // email, wait, email: 2 waiting (current_step 2), 1 due for the second email, 3 done.
        let steps = [email(), wait(), email()];
        let f = funnel(
            &steps,
            &[
                group(GroupStatus::Active, 2, true, 2),
                group(GroupStatus::Active, 2, false, 1),
                group(GroupStatus::Completed, 3, false, 3),
            ],
            &[
                StepGroup {
                    step_index: 0,
                    outcome: StepOutcome::Sent,
                    count: 6,
                },
                StepGroup {
                    step_index: 2,
                    outcome: StepOutcome::Sent,
                    count: 3,
                },
            ],
        );
        assert_eq!(f.iter().map(|s| s.entered).collect::<Vec<_>>(), [6, 6, 4]);
        assert_eq!(f.iter().map(|s| s.here_now).collect::<Vec<_>>(), [0, 2, 1]);
        assert_eq!(f.iter().map(|s| s.next).collect::<Vec<_>>(), [0, 0, 3]);
        assert_eq!(f.iter().map(|s| s.sent).collect::<Vec<_>>(), [6, 0, 3]);
    }

    #[test]
    fn a_contact_that_left_during_a_wait_left_at_the_wait() {
        let steps = [email(), wait(), email()];
        let f = funnel(&steps, &[group(GroupStatus::Exited, 2, false, 4)], &[]);
        assert_eq!(f[1].exited.get("exit_when"), Some(&4));
        assert!(f[2].exited.is_empty());
        assert_eq!(f[2].entered, 0);
    }

    #[test]
    fn skipped_and_failed_keep_their_reasons_and_removed_positions_count_at_the_last_step() {
        let steps = [email()];
        let f = funnel(
            &steps,
            &[group(GroupStatus::Active, 5, false, 1)],
            &[
                StepGroup {
                    step_index: 0,
                    outcome: StepOutcome::Skipped("suppressed".into()),
                    count: 2,
                },
                StepGroup {
                    step_index: 0,
                    outcome: StepOutcome::Failed("no template".into()),
                    count: 1,
                },
                StepGroup {
                    step_index: 9,
                    outcome: StepOutcome::Sent,
                    count: 7,
                },
            ],
        );
        assert_eq!(f[0].skipped.get("suppressed"), Some(&2));
        assert_eq!(f[0].failed.get("no template"), Some(&1));
        assert_eq!((f[0].entered, f[0].here_now, f[0].sent), (1, 1, 0));
        assert_eq!(
            finishing(&steps, &[group(GroupStatus::Active, 5, false, 1)]),
            1
        );
    }

    #[test]
    fn no_steps_no_funnel() {
        assert!(funnel(&[], &[group(GroupStatus::Active, 0, false, 1)], &[]).is_empty());
    }
}
