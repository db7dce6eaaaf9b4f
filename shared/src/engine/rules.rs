//! Point rules: which fire for an event and how many points each awards.

use super::config::{Conditions, PointRule, Recipient, TraitCondition};
use super::model::Traits;

/// What a rule's conditions look at: the recipient as they stand.
#[derive(Debug, Clone, Copy)]
pub struct RecipientFacts<'a> {
    /// Confirmed referrals, counting the one being confirmed now (if any).
    pub confirmed_referrals: u32,
    /// Score before this event.
    pub score: i64,
    pub traits: &'a Traits,
}

pub fn conditions_hold(when: &Conditions, facts: &RecipientFacts<'_>) -> bool {
    if let Some(c) = &when.referral_count
        && (c.equals.is_some_and(|n| facts.confirmed_referrals != n)
            || c.gte.is_some_and(|n| facts.confirmed_referrals < n))
    {
        return false;
    }
    if when.first_referral_only && facts.confirmed_referrals != 1 {
        return false;
    }
    if when.min_score.is_some_and(|m| facts.score < m) {
        return false;
    }
    when.traits.iter().all(|t| trait_holds(t, facts.traits))
}

fn trait_holds(cond: &TraitCondition, traits: &Traits) -> bool {
    let Some(value) = traits.get(&cond.key) else {
        return false;
    };
    if let Some(expected) = &cond.equals {
        return value == expected;
    }
    if let Some(options) = &cond.one_of {
        return options.contains(value);
    }
    if let Some(min) = cond.gte {
        return value.as_f64().is_some_and(|v| v >= min);
    }
    false
}

/// A rule that fired: who gets how much.
#[derive(Debug, Clone, PartialEq)]
pub struct Award<'a> {
    pub rule: &'a PointRule,
    pub to: Recipient,
    pub points: i64,
}

/// The rules of `rules` (already filtered to one event and sorted by priority)
/// that fire. `facts_for` gives the facts of a recipient, or `None` when there is
/// no such recipient (no referrer for an unreferred participant). Scores seen
/// by later rules include the points of earlier ones, so `min_score` rules can
/// stack deterministically.
pub fn evaluate<'a, 't>(
    rules: impl Iterator<Item = &'a PointRule>,
    mut facts_for: impl FnMut(Recipient, bool) -> Option<(u32, i64, &'t Traits)>,
) -> Vec<Award<'a>> {
    let mut awards: Vec<Award<'a>> = Vec::new();
    for rule in rules {
        // A trusted rule's trait conditions read only what the site's server said.
        let Some((confirmed, score, traits)) = facts_for(rule.to, rule.trusted) else {
            continue;
        };
        let earned: i64 = awards.iter().filter(|a| a.to == rule.to).map(|a| a.points).sum();
        let facts = RecipientFacts {
            confirmed_referrals: confirmed,
            score: score + earned,
            traits,
        };
        if conditions_hold(&rule.when, &facts) {
            awards.push(Award {
                rule,
                to: rule.to,
                points: rule.points,
            });
        }
    }
    awards
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::CampaignConfig;
    use serde_json::json;

    fn config(rules: serde_json::Value) -> CampaignConfig {
        CampaignConfig::from_json(&json!({"name": "t", "point_rules": rules}).to_string()).unwrap()
    }

    fn fired(c: &CampaignConfig, event: &str, confirmed: u32, score: i64, traits: &Traits) -> Vec<String> {
        evaluate(c.rules_for(event), |_, _| Some((confirmed, score, traits)))
            .into_iter()
            .map(|a| a.rule.id.clone())
            .collect()
    }

    #[test]
    fn referral_count_first_only_and_min_score() {
        let c = config(json!([
            {"id":"each","event":"referral_confirmed","to":"referrer","points":10},
            {"id":"first","event":"referral_confirmed","to":"referrer","points":5,"when":{"first_referral_only":true}},
            {"id":"fifth","event":"referral_confirmed","to":"referrer","points":50,"when":{"referral_count":{"equals":5}}},
            {"id":"ten-plus","event":"referral_confirmed","to":"referrer","points":20,"when":{"referral_count":{"gte":10}}},
            {"id":"rich","event":"referral_confirmed","to":"referrer","points":1,"priority":9,"when":{"min_score":100}}
        ]));
        let t = Traits::new();
        assert_eq!(fired(&c, "referral_confirmed", 1, 0, &t), ["each", "first"]);
        assert_eq!(fired(&c, "referral_confirmed", 5, 0, &t), ["each", "fifth"]);
        assert_eq!(fired(&c, "referral_confirmed", 12, 0, &t), ["each", "ten-plus"]);
        // 90 before, +10 from "each" earlier in the same event: 100 reaches min_score.
        assert_eq!(fired(&c, "referral_confirmed", 2, 90, &t), ["each", "rich"]);
        assert_eq!(fired(&c, "referral_confirmed", 2, 89, &t), ["each"]);
    }

    #[test]
    fn trait_conditions() {
        let c = config(json!([
            {"id":"pro","event":"purchase","to":"self","points":10,"when":{"traits":[{"key":"plan","equals":"pro"}]}},
            {"id":"paid","event":"purchase","to":"self","points":5,"when":{"traits":[{"key":"plan","in":["pro","team"]}]}},
            {"id":"veteran","event":"purchase","to":"self","points":1,"when":{"traits":[{"key":"tenure_days","gte":180}]}}
        ]));
        let mut t = Traits::new();
        assert!(
            fired(&c, "purchase", 0, 0, &t).is_empty(),
            "a missing trait never matches"
        );
        t.insert("plan".into(), json!("team"));
        t.insert("tenure_days".into(), json!(200));
        assert_eq!(fired(&c, "purchase", 0, 0, &t), ["paid", "veteran"]);
        t.insert("plan".into(), json!("pro"));
        t.insert("tenure_days".into(), json!("long"));
        assert_eq!(fired(&c, "purchase", 0, 0, &t), ["pro", "paid"]);
    }

    #[test]
    fn no_recipient_no_award() {
        let c = config(json!([{"id":"r","event":"signup","to":"referrer","points":10}]));
        assert!(evaluate(c.rules_for("signup"), |_, _| None).is_empty());
    }
}
