//! What one change event does, inside the consumer's transaction (which also records the event id
//! and the shard's seq): triggers and conditions are checked for every enabled automation of the
//! workspace, firings are recorded, projections for clock-driven conditions are updated, and
//! active enrollments whose sequence should end for the new state are exited.
//!
//! All of it commits or none of it does. A process that dies before the commit leaves the stream
//! entry unacknowledged; it is read again (by this process after a restart, or by whichever holds
//! the shard) and applied then.

use chrono::{DateTime, Utc};
use meisa_conditions::{Condition, State, became_true, evaluate, next_flip};
use sqlx::PgConnection;

use super::fire::{Wake, fire, record_exits};
use crate::{
    domain::{
        EventKind, EventView, SequenceDef, Trigger,
        event::{may_trigger, snapshot},
    },
    error::Result,
    store::{
        consumer,
        definitions::{self, AutomationRow},
        effects, enrollments,
        projections::{self, Projection},
    },
};

pub async fn apply(conn: &mut PgConnection, ev: &EventView, now: DateTime<Utc>) -> Result<Wake> {
    let ws = ev.workspace_id.as_str();
    let contact = ev.contact_id.as_str();
    let Some(after) = ev.after.as_ref().filter(|_| ev.kind != EventKind::Deleted) else {
        // Erasure: end what runs for the contact and forget it.
        let ended = enrollments::exit_active(conn, ws, contact, None, "contact_deleted").await?;
        record_exits(conn, ws, None, &ended, "contact_deleted").await?;
        effects::erase_contact(conn, ws, contact).await?;
        return Ok(Wake::default());
    };
    let automations = definitions::enabled_automations(conn, ws).await?;
    let before = ev.before();
    let mut wake = Wake::default();
    let mut suppressed = Vec::new();
    for a in &automations {
        let fires = if a.time_dependent {
            let Some(cond) = a.def.conditions.as_ref() else {
                continue;
            };
            let (fires, next) =
                track_projection(conn, a, cond, ev, before.as_ref(), after, now).await?;
            wake.sweep |= next.is_some();
            fires
        } else {
            matches(a, ev, before.as_ref(), after, now)
        };
        if !fires {
            continue;
        }
        if !may_trigger(ev.depth) {
            suppressed.push(a.id.as_str());
            continue;
        }
        if let Some(w) = fire(conn, a, contact, &ev.event_id, ev.depth, now).await? {
            wake.merge(w);
        }
    }
    if !suppressed.is_empty() {
        metrics::counter!("meisa_automations_loop_guard_total").increment(1);
        let chain = consumer::causation_chain(
            conn,
            ev.cause_automation_id.as_deref(),
            ev.cause_event_id.as_deref(),
        )
        .await?;
        tracing::info!(
            event = %ev.event_id,
            contact,
            depth = ev.depth,
            chain = %chain.join(" → "),
            suppressed = ?suppressed,
            "loop guard: a change at causation depth {} triggers nothing",
            ev.depth
        );
    }
    // A new contact has no enrollment that predates this event (one made just now starts with
    // the same checks before its first step).
    if ev.kind == EventKind::Updated {
        exit_for_new_state(conn, ev, after, now).await?;
    }
    Ok(wake)
}

/// Whether an automation without clock-driven conditions fires for the event.
pub fn matches(
    a: &AutomationRow,
    ev: &EventView,
    before: Option<&State>,
    after: &State,
    now: DateTime<Utc>,
) -> bool {
    match (&a.def.trigger, &a.def.conditions) {
        (Trigger::ConditionMet, Some(c)) => became_true(c, before, after, now),
        (Trigger::ConditionMet, None) => false,
        (t, c) => t.matches(ev) && c.as_ref().is_none_or(|c| evaluate(c, after, now)),
    }
}

/// A time-dependent condition_met automation: "was false" is the value stored when the contact was
/// last looked at (by an event or the sweep), not the old state re-evaluated now, so a condition
/// that time made true just before this event still fires once. Writes the new projection and
/// returns whether the automation fires and the next instant time alone changes the value.
async fn track_projection(
    conn: &mut PgConnection,
    a: &AutomationRow,
    cond: &Condition,
    ev: &EventView,
    before: Option<&State>,
    after: &State,
    now: DateTime<Utc>,
) -> Result<(bool, Option<DateTime<Utc>>)> {
    let stored = projections::lock(conn, &a.workspace_id, &a.id, &ev.contact_id).await?;
    let was = match stored {
        Some(v) => v,
        None => before.is_some_and(|b| evaluate(cond, b, now)),
    };
    let is = evaluate(cond, after, now);
    let fields = cond.fields();
    let next = next_flip(cond, after, now);
    let touched = ev.kind == EventKind::Created || ev.touches(&fields);
    if stored.is_none() || touched || was != is {
        projections::upsert(
            conn,
            &Projection {
                workspace_id: &a.workspace_id,
                automation_id: &a.id,
                contact_id: &ev.contact_id,
                state: snapshot(after, &fields),
                version: ev.version,
                last_value: is,
                next_check_at: next,
            },
        )
        .await?;
    }
    Ok((!was && is, next))
}

/// DESIGN §3 checks exit_when and the subscription before every step; doing it on the change too
/// ends the enrollment as soon as the state says so (enrollment lists and stats show it at once).
async fn exit_for_new_state(
    conn: &mut PgConnection,
    ev: &EventView,
    after: &State,
    now: DateTime<Utc>,
) -> Result<()> {
    let active = enrollments::active_for_contact(conn, &ev.workspace_id, &ev.contact_id).await?;
    for (id, _sequence_id, definition) in active {
        let reason = if after.subscribed == Some(false) {
            Some("unsubscribed")
        } else {
            match SequenceDef::parse(&definition) {
                Ok(s) => s
                    .exit_when
                    .as_ref()
                    .is_some_and(|c| evaluate(c, after, now))
                    .then_some("exit_when"),
                // The scheduler reports an unreadable sequence when it runs the next step.
                Err(_) => None,
            }
        };
        let Some(reason) = reason else { continue };
        if let Some(ended) = enrollments::exit_one(conn, &ev.workspace_id, &id, reason).await? {
            record_exits(
                conn,
                &ev.workspace_id,
                Some(&ev.contact_id),
                &[ended],
                reason,
            )
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use meisa_proto::events::ChangeKind;
    use serde_json::json;

    use super::*;
    use crate::domain::{
        AutomationDef,
        event::tests::{change, contact, event, int},
    };

    fn automation(v: serde_json::Value) -> AutomationRow {
        let def = AutomationDef::parse(&v).unwrap();
        AutomationRow {
            workspace_id: "ws_1".into(),
            id: "aut_1".into(),
            time_dependent: def.is_time_dependent(),
            def,
            unseen_fields: vec![],
            revision: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn posts(from: Option<i64>, to: i64) -> EventView {
        event(
            if from.is_some() {
                ChangeKind::Updated
            } else {
                ChangeKind::Created
            },
            vec![change(
                "custom_fields.posts_generated",
                from.map(int),
                Some(int(to)),
            )],
            contact(&[("posts_generated", int(to))], &[]),
            0,
        )
    }

    fn fires(a: &AutomationRow, ev: &EventView) -> bool {
        matches(
            a,
            ev,
            ev.before().as_ref(),
            ev.after.as_ref().unwrap(),
            Utc::now(),
        )
    }

    #[test]
    fn condition_met_fires_on_the_change_that_makes_it_true() {
        let a = automation(json!({"name": "n", "trigger": {"type": "condition_met"},
            "conditions": {"all": [{"field": "posts_generated", "op": "gte", "value": 5}]}}));
        assert!(!fires(&a, &posts(Some(3), 4)));
        assert!(fires(&a, &posts(Some(4), 5)));
        assert!(!fires(&a, &posts(Some(5), 6)), "already true before");
        assert!(fires(&a, &posts(None, 7)), "a new contact was false before");
    }

    #[test]
    fn conditions_must_hold_after_the_change() {
        let a = automation(json!({"name": "n",
            "trigger": {"type": "contact_updated", "field": "posts_generated"},
            "conditions": {"all": [{"field": "posts_generated", "op": "gt", "value": 10}]}}));
        assert!(!fires(&a, &posts(Some(3), 4)));
        assert!(fires(&a, &posts(Some(11), 12)));
    }
}
