//! What the hourly job asks of the table: recordings past retention (the live-recordings index, `gsi2`) and
//! calls whose replaced content may still be stored (the clean-up index, `gsi3`), page by page, and the
//! conditional marks that make each step safe to repeat and to race with writers.

use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::batch::key;
use super::codec::{s, Item};
use super::{classify, condition_held, layout, DynamoStore};
use crate::error::StoreError;
use crate::model::{RecordingStatus, StoredRecording};

/// Where the next page of an index starts. Opaque: only the store reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct PageToken(Item);

/// A recording whose retention has ended, as the expiry job sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct DueRecording {
    /// The call's partition key.
    pub pk: String,
    /// Its live-recordings index sort key, which also pins the recording for the conditional marks.
    pub index_sk: String,
    /// When the recording was made (rounded up to the second).
    pub made_at: DateTime<Utc>,
    pub object_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DuePage {
    pub due: Vec<DueRecording>,
    /// Rows of the index that could not be read (skipped and logged).
    pub unreadable: u64,
    /// Where the next page starts; `None` at the end of the shard.
    pub next: Option<PageToken>,
}

/// A call whose replaced content may still be stored, as the clean-up index holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StaleContent {
    pub pk: String,
    marker: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StalePage {
    pub stale: Vec<StaleContent>,
    pub next: Option<PageToken>,
}

fn text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn due_row(item: Item) -> Result<DueRecording, String> {
    let pk = text(&item, layout::PK).ok_or("no pk")?;
    let index_sk = text(&item, layout::GSI2_SK).ok_or_else(|| format!("{pk}: no {}", layout::GSI2_SK))?;
    let made_at = layout::parse_recording_time(&index_sk).ok_or_else(|| format!("{pk}: bad {index_sk:?}"))?;
    let recording: Option<StoredRecording> = match item.get(layout::RECORDING) {
        Some(value) => Some(serde_dynamo::from_attribute_value(value.clone()).map_err(|e| format!("{pk}: {e}"))?),
        None => None,
    };
    Ok(DueRecording {
        pk,
        index_sk,
        made_at,
        object_key: recording.and_then(|r| r.key),
    })
}

impl DynamoStore {
    /// One page of the live recordings in `shard` made before `made_before` (a `gsi2sk` bound), oldest
    /// first. Rows that cannot be read are skipped and logged, never failing the page.
    pub async fn due_recordings(
        &self,
        shard: u32,
        made_before: DateTime<Utc>,
        start: Option<PageToken>,
        limit: i32,
    ) -> Result<DuePage, StoreError> {
        let shard = layout::recording_shard_pk(shard);
        let out = self
            .index_page(
                layout::GSI2,
                (layout::GSI2_PK, &shard),
                layout::GSI2_SK,
                made_before,
                start,
                limit,
            )
            .await?;
        let mut due = Vec::new();
        let mut unreadable = 0;
        for item in out.items.unwrap_or_default() {
            match due_row(item) {
                Ok(row) => due.push(row),
                Err(why) => {
                    unreadable += 1;
                    tracing::warn!(row = %why, "recording-expiry: unreadable index row skipped");
                }
            }
        }
        Ok(DuePage {
            due,
            unreadable,
            next: out.last_evaluated_key.filter(|k| !k.is_empty()).map(PageToken),
        })
    }

    /// Step 1 of expiring a recording: marks it expired, on condition that the call still holds that same
    /// recording (its index key unchanged). `false` when it does not: the call was rewritten since the
    /// recording was found, and nothing may be deleted. The call stays in the index until
    /// [`Self::leave_recording_index`], so a run cut off after this mark is finished by the next.
    pub async fn mark_recording_expired(&self, due: &DueRecording) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&due.pk, layout::SUMMARY_SK)))
            .update_expression("SET #rec.#status = :expired")
            .condition_expression("#gs = :sk")
            .expression_attribute_names("#rec", layout::RECORDING)
            .expression_attribute_names("#status", layout::RECORDING_STATUS)
            .expression_attribute_names("#gs", layout::GSI2_SK)
            .expression_attribute_values(
                ":expired",
                serde_dynamo::to_attribute_value(RecordingStatus::Expired)
                    .map_err(|e| StoreError::Failed(e.to_string()))?,
            )
            .expression_attribute_values(":sk", s(&due.index_sk))
            .send()
            .await;
        condition_held("UpdateItem", result)
    }

    /// The last step: the recording's object is gone, so the call leaves the live-recordings index (if it
    /// still holds that recording). `false` when another run, or a rewrite, got there first.
    pub async fn leave_recording_index(&self, due: &DueRecording) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&due.pk, layout::SUMMARY_SK)))
            .update_expression("REMOVE #gp, #gs")
            .condition_expression("#gs = :sk")
            .expression_attribute_names("#gp", layout::GSI2_PK)
            .expression_attribute_names("#gs", layout::GSI2_SK)
            .expression_attribute_values(":sk", s(&due.index_sk))
            .send()
            .await;
        condition_held("UpdateItem", result)
    }

    /// One page of the calls in clean-up shard `shard` that entered the index before `before`, oldest
    /// first.
    pub async fn stale_content(
        &self,
        shard: u32,
        before: DateTime<Utc>,
        start: Option<PageToken>,
        limit: i32,
    ) -> Result<StalePage, StoreError> {
        let shard = layout::cleanup_shard_pk(shard);
        let out = self
            .index_page(
                layout::GSI3,
                (layout::GSI3_PK, &shard),
                layout::GSI3_SK,
                before,
                start,
                limit,
            )
            .await?;
        let stale = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|item| {
                Some(StaleContent {
                    pk: text(&item, layout::PK)?,
                    marker: text(&item, layout::GSI3_SK)?,
                })
            })
            .collect();
        Ok(StalePage {
            stale,
            next: out.last_evaluated_key.filter(|k| !k.is_empty()).map(PageToken),
        })
    }

    /// One page of a sharded, time-sorted index (`gsi2`, `gsi3`): the rows of partition `pk` whose sort key
    /// `sk_attr` is before `before`, oldest first.
    async fn index_page(
        &self,
        index: &str,
        pk: (&str, &str),
        sk_attr: &str,
        before: DateTime<Utc>,
        start: Option<PageToken>,
        limit: i32,
    ) -> Result<QueryOutput, StoreError> {
        self.query_key(Some(index), pk.0, pk.1, Some("#s < :before"))
            .expression_attribute_names("#s", sk_attr)
            .expression_attribute_values(":before", s(layout::recording_time(before)))
            .set_exclusive_start_key(start.map(|t| t.0))
            .limit(limit)
            .send()
            .await
            .map_err(|e| classify("Query", e))
    }

    /// Deletes the content a call's summary no longer names and takes it out of the clean-up index (see
    /// [`super::calls`]). Returns the parts deleted.
    pub async fn remove_stale_content(&self, stale: &StaleContent) -> Result<u64, StoreError> {
        self.clean_up(&stale.pk, &stale.marker).await
    }
}
