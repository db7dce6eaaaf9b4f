//! A person across every campaign of the tenant: the right of access and
//! erasure (GDPR). The ledger's numbers stay so every sum stays true.

use super::{Admin, participant_target};
use crate::app::{Campaigns, Limiter, Reply, Response, bad, db_error, invalid};
use crate::campaign::{Erased as ErasedThere, Op};
use crate::db::{Db, Kv, query_as};
use crate::directory::CampaignRow;
use crate::sql;
use crate::stmt;
use refloop_core::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Campaigns one erasure or access asks at most (each is one subrequest,
/// twice for an erasure; Cloudflare allows 1,000 per invocation).
const PEOPLE_CAMPAIGNS: usize = 200;
const _: () = assert!(
    2 * PEOPLE_CAMPAIGNS + 10 < 1000,
    "an erasure stays within the subrequest limit"
);

/// A campaign's answer to an erasure.
fn erased_of(answer: Value) -> Result<ErasedThere, ApiError> {
    serde_json::from_value(answer).map_err(crate::app::internal)
}

/// The identities a person request names: `user_id` and/or `anonymous_id`.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct Identities {
    #[serde(default, rename = "anonymous_id", with = "one_or_none")]
    anonymous_ids: Vec<String>,
    #[serde(default, rename = "user_id", with = "one_or_none")]
    user_ids: Vec<String>,
}

/// An optional id as a list of none or one.
mod one_or_none {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.into_iter().collect())
    }
}

impl Identities {
    fn checked(self) -> Result<Self, ApiError> {
        if self.anonymous_ids.is_empty() && self.user_ids.is_empty() {
            return Err(bad("name the person: `user_id` and/or `anonymous_id`"));
        }
        if self
            .anonymous_ids
            .iter()
            .chain(&self.user_ids)
            .any(|v| v.is_empty() || v.chars().count() > 128)
        {
            return Err(invalid("an id is 1 to 128 characters"));
        }
        Ok(self)
    }

    /// Adds what a campaign's answer names (`anonymous_ids`, `user_ids`);
    /// whether any was new.
    fn learn(&mut self, answer: &ErasedThere) -> bool {
        let before = self.anonymous_ids.len() + self.user_ids.len();
        for (learnt, list) in [
            (&answer.anonymous_ids, &mut self.anonymous_ids),
            (&answer.user_ids, &mut self.user_ids),
        ] {
            for v in learnt {
                if !list.contains(v) {
                    list.push(v.clone());
                }
            }
        }
        self.anonymous_ids.len() + self.user_ids.len() > before
    }

    fn json(list: &[String]) -> String {
        serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
    }
}

#[derive(Serialize)]
struct Erased {
    #[serde(skip_serializing_if = "Option::is_none")]
    participant: Option<u64>,
    erased: Value,
    campaigns: usize,
}

/// `DELETE /v1/admin/campaigns/{campaign}/participants/{participant}`: the
/// erasure of the person this participant is, in every campaign of the
/// tenant (as `POST /v1/admin/people/erase` with their identities).
pub async fn erase_participant<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let (c, _) = a.campaign().await?;
    let participant = a.id("participant")?;
    let answer = erased_of(a.ask(&c, Op::Erase { participant }).await?)?;
    let mut person = Identities::default();
    person.learn(&answer);
    let mut erased = vec![participant_target(&c.slug, participant)];
    let campaigns = erase_everywhere(a, "participant.erase", person, &mut erased).await?;
    Ok(Response::view(
        200,
        &Erased {
            participant: Some(participant),
            erased: Value::Bool(true),
            campaigns,
        },
    ))
}

/// `POST /v1/admin/people/erase` `{user_id?, anonymous_id?}`: the person is
/// forgotten in every campaign of the tenant (ids, traits, hashes, board
/// rows, the input log, notes written about them), in every site's raw
/// events from any of their devices, and in the audit log's notes.
pub async fn erase<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let person = a.body::<Identities>()?.checked()?;
    let mut erased = Vec::new();
    let campaigns = erase_everywhere(a, "person.erase", person, &mut erased).await?;
    Ok(Response::view(
        200,
        &Erased {
            participant: None,
            erased: Value::from(erased.len()),
            campaigns,
        },
    ))
}

/// The tenant's campaigns a person may be in (every one with a version).
async fn people_campaigns<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    a: &Admin<'_, D, K, C, L>,
) -> Result<Vec<CampaignRow>, ApiError> {
    let rows: Vec<CampaignRow> = a.rows(stmt!(sql::CAMPAIGNS_OF_TENANT, a.site.tenant_id)).await?;
    Ok(rows
        .into_iter()
        .filter(|c| c.current_version > 0)
        .take(PEOPLE_CAMPAIGNS)
        .collect())
}

async fn erase_everywhere<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    a: &Admin<'_, D, K, C, L>,
    action: &str,
    mut person: Identities,
    erased: &mut Vec<String>,
) -> Result<usize, ApiError> {
    let campaigns = people_campaigns(a).await?;
    // Twice: a device one campaign knew may name them in another.
    for _ in 0..2 {
        let mut learnt = false;
        for c in &campaigns {
            let op = Op::ErasePerson {
                anonymous_ids: person.anonymous_ids.clone(),
                user_ids: person.user_ids.clone(),
            };
            let answer = erased_of(a.ask(c, op).await?)?;
            let ids: Vec<u64> = serde_json::from_value(answer.erased.clone()).unwrap_or_default();
            erased.extend(ids.into_iter().map(|p| participant_target(&c.slug, p)));
            learnt |= person.learn(&answer);
        }
        if !learnt {
            break;
        }
    }
    #[derive(Serialize)]
    struct Detail {
        participants: usize,
        campaigns: usize,
    }
    let detail = Detail {
        participants: erased.len(),
        campaigns: campaigns.len(),
    };
    let tenant = a.site.tenant_id;
    let (users, anonymous) = (
        Identities::json(&person.user_ids),
        Identities::json(&person.anonymous_ids),
    );
    a.ctx
        .db
        .batch(vec![
            stmt!(sql::ERASE_EVENTS, tenant, users, anonymous),
            stmt!(sql::ERASE_AUDIT_NOTES, tenant, Identities::json(erased)),
            a.audit(action, "person", detail),
        ])
        .await
        .map_err(db_error)?;
    Ok(campaigns.len())
}

/// Raw events the access answer lists at most.
const PERSON_EVENTS: i64 = 1000;

/// `GET /v1/admin/people?user_id=&anonymous_id=`: the right of access,
/// everything the tenant's campaigns and raw events keep about a person.
pub async fn access<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Serialize)]
    struct Found {
        campaign: String,
        record: Value,
    }
    #[derive(Serialize)]
    struct Person {
        campaigns: Vec<Found>,
        events: Vec<super::site::EventRow>,
    }
    let person = Identities {
        anonymous_ids: a.query("anonymous_id").map(str::to_owned).into_iter().collect(),
        user_ids: a.query("user_id").map(str::to_owned).into_iter().collect(),
    }
    .checked()?;
    let mut campaigns = Vec::new();
    for c in people_campaigns(a).await? {
        let op = Op::Person {
            anonymous_ids: person.anonymous_ids.clone(),
            user_ids: person.user_ids.clone(),
        };
        let mut answer = a.ask(&c, op).await?;
        if let Some(Value::Array(records)) = answer.get_mut("participants").map(Value::take) {
            campaigns.extend(records.into_iter().map(|record| Found {
                campaign: c.slug.clone(),
                record,
            }));
        }
    }
    let events = query_as(
        a.ctx.db,
        stmt!(
            sql::EVENTS_OF_PERSON,
            a.site.tenant_id,
            Identities::json(&person.user_ids),
            Identities::json(&person.anonymous_ids),
            PERSON_EVENTS
        ),
    )
    .await
    .map_err(db_error)?;
    Ok(Response::view(200, &Person { campaigns, events }))
}
