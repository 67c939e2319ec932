//! API keys: one item each, found from the key itself; `gsi1` lists a tenant's keys.

use chrono::{DateTime, Utc};

use super::batch::{all_pages, key};
use super::codec::{s, Item};
use super::layout::{self, KeyItem};
use super::{classify, condition_held, DynamoStore};
use crate::apikey::{self, ApiKeyRecord, Caller};
use crate::error::StoreError;
use crate::ids::TenantId;

fn decode(item: Item) -> Result<ApiKeyRecord, StoreError> {
    let item: KeyItem = serde_dynamo::from_item(item).map_err(|e| StoreError::Failed(format!("decode key: {e}")))?;
    Ok(item.record)
}

impl DynamoStore {
    pub async fn put_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let tenant = TenantId::parse(&record.tenant_id).map_err(|e| StoreError::Failed(e.to_string()))?;
        let item: Item = serde_dynamo::to_item(KeyItem::new(&tenant, record.clone()))
            .map_err(|e| StoreError::Failed(format!("encode key: {e}")))?;
        self.put_new(item).await
    }

    /// A key's record, read consistently so that a revocation takes effect at once.
    pub async fn get_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(&layout::key_pk(key_id), layout::key_sk())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        out.item.map(decode).transpose()
    }

    /// Who a presented key acts for, or `None` for a malformed, unknown or revoked key.
    pub async fn authenticate(&self, key: &str) -> Result<Option<Caller>, StoreError> {
        let Some(key_id) = apikey::key_id_of(key) else {
            return Ok(None);
        };
        Ok(self
            .get_key(key_id)
            .await?
            .and_then(|record| apikey::verify(&record, key)))
    }

    /// Marks a key revoked; `false` when there is no such key. Revoking twice keeps the first time.
    pub async fn revoke_key(&self, key_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&layout::key_pk(key_id), layout::key_sk())))
            .update_expression("SET #rev = if_not_exists(#rev, :now)")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", layout::PK)
            .expression_attribute_names("#rev", layout::REVOKED_AT)
            .expression_attribute_values(":now", s(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
            .send()
            .await;
        condition_held("UpdateItem", result)
    }

    /// A tenant's keys, newest first.
    pub async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let query = self
            .query_key(
                Some(layout::GSI1),
                layout::GSI1_PK,
                &layout::tenant_keys_gsi1pk(tenant),
                None,
            )
            .scan_index_forward(false);
        all_pages(query).await?.into_iter().map(decode).collect()
    }
}
