//! Webhook endpoints: one item each, found from the id in the URL; `gsi1` lists a tenant's endpoints.

use super::batch::{all_pages, key};
use super::codec::Item;
use super::layout::{self, EndpointItem};
use super::{classify, condition_held, DynamoStore};
use crate::error::StoreError;
use crate::ids::TenantId;
use crate::webhook::endpoint::WebhookEndpoint;

fn decode(item: Item) -> Result<WebhookEndpoint, StoreError> {
    let item: EndpointItem =
        serde_dynamo::from_item(item).map_err(|e| StoreError::Failed(format!("decode webhook endpoint: {e}")))?;
    Ok(item.endpoint)
}

fn encode(endpoint: &WebhookEndpoint) -> Result<Item, StoreError> {
    let tenant = TenantId::parse(&endpoint.tenant_id).map_err(|e| StoreError::Failed(e.to_string()))?;
    serde_dynamo::to_item(EndpointItem::new(&tenant, endpoint.clone()))
        .map_err(|e| StoreError::Failed(format!("encode webhook endpoint: {e}")))
}

impl DynamoStore {
    /// Stores a new endpoint (its id is fresh; an existing one is never overwritten).
    pub async fn put_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), StoreError> {
        self.put_new(encode(endpoint)?).await
    }

    /// Replaces an endpoint's secrets (a rotation); `false` when it was deleted meanwhile.
    pub async fn save_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(encode(endpoint)?))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", layout::PK)
            .send()
            .await;
        condition_held("PutItem", result)
    }

    /// An endpoint, read consistently so that a rotation or a deletion takes effect at once.
    pub async fn get_endpoint(&self, endpoint_id: &str) -> Result<Option<WebhookEndpoint>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(&layout::endpoint_pk(endpoint_id), layout::endpoint_sk())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        out.item.map(decode).transpose()
    }

    /// Deletes an endpoint; `false` when there was none. Calls it wrote stay.
    pub async fn delete_endpoint(&self, endpoint_id: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(&layout::endpoint_pk(endpoint_id), layout::endpoint_sk())))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", layout::PK)
            .send()
            .await;
        condition_held("DeleteItem", result)
    }

    /// A tenant's endpoints, newest first.
    pub async fn list_endpoints(&self, tenant: &TenantId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let query = self
            .query_key(
                Some(layout::GSI1),
                layout::GSI1_PK,
                &layout::tenant_endpoints_gsi1pk(tenant),
                None,
            )
            .scan_index_forward(false);
        all_pages(query).await?.into_iter().map(decode).collect()
    }
}
