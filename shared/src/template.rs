//! Reads the table, the bucket's retention rule and the retention parameter out of template.yaml, so the
//! local stack is created from the very definitions that are deployed. Only the operator tool and the tests
//! use this (feature `admin`); the Lambda functions never parse the template.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableStatus,
};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
};
use serde_norway::Value;

/// template.yaml, as built into this binary.
pub const TEMPLATE_YAML: &str = include_str!("../../template.yaml");

pub const TABLE_RESOURCE: &str = "CallsTable";
pub const BUCKET_RESOURCE: &str = "RecordingsBucket";
pub const RETENTION_PARAMETER: &str = "RecordingRetentionDays";

#[derive(Debug, thiserror::Error)]
#[error("template.yaml: {0}")]
pub struct TemplateError(String);

fn err<T>(what: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(what.into()))
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyDef {
    pub attribute: String,
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexDef {
    pub name: String,
    pub keys: Vec<KeyDef>,
    pub projection: String,
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub attributes: Vec<(String, String)>,
    pub keys: Vec<KeyDef>,
    pub indexes: Vec<IndexDef>,
    pub billing_mode: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleDef {
    pub id: String,
    pub prefix: String,
    /// The parameter `ExpirationInDays` refers to.
    pub days_parameter: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub table: TableDef,
    pub lifecycle: LifecycleDef,
    pub retention_default_days: u32,
    /// `Globals.Function.Environment.Variables`: each variable and the resource or parameter it `!Ref`s
    /// (plain values as they are).
    pub function_env: BTreeMap<String, String>,
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Result<&'a Value, TemplateError> {
    let mut cur = v;
    for p in path {
        cur = match cur.get(*p) {
            Some(next) => next,
            None => return err(format!("missing {}", path.join("."))),
        };
    }
    Ok(cur)
}

fn string(v: &Value, what: &str) -> Result<String, TemplateError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => err(format!("{what} is not a string")),
    }
}

/// The target of `!Ref X`, or the plain value.
fn reference(v: &Value, what: &str) -> Result<String, TemplateError> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => string(&t.value, what),
        other => string(other, what),
    }
}

fn seq<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, TemplateError> {
    v.as_sequence()
        .ok_or_else(|| TemplateError(format!("{what} is not a list")))
}

fn keys(v: &Value, what: &str) -> Result<Vec<KeyDef>, TemplateError> {
    seq(v, what)?
        .iter()
        .map(|k| {
            Ok(KeyDef {
                attribute: string(get(k, &["AttributeName"])?, what)?,
                kind: string(get(k, &["KeyType"])?, what)?,
            })
        })
        .collect()
}

pub fn parse(yaml: &str) -> Result<Template, TemplateError> {
    let doc: Value = serde_norway::from_str(yaml).map_err(|e| TemplateError(e.to_string()))?;
    let props = get(&doc, &["Resources", TABLE_RESOURCE, "Properties"])?;
    let attributes = seq(get(props, &["AttributeDefinitions"])?, "AttributeDefinitions")?
        .iter()
        .map(|a| {
            Ok((
                string(get(a, &["AttributeName"])?, "AttributeName")?,
                string(get(a, &["AttributeType"])?, "AttributeType")?,
            ))
        })
        .collect::<Result<Vec<_>, TemplateError>>()?;
    let indexes = match props.get("GlobalSecondaryIndexes") {
        None => Vec::new(),
        Some(list) => seq(list, "GlobalSecondaryIndexes")?
            .iter()
            .map(|i| {
                Ok(IndexDef {
                    name: string(get(i, &["IndexName"])?, "IndexName")?,
                    keys: keys(get(i, &["KeySchema"])?, "index KeySchema")?,
                    projection: string(get(i, &["Projection", "ProjectionType"])?, "ProjectionType")?,
                    non_key_attributes: match i.get("Projection").and_then(|p| p.get("NonKeyAttributes")) {
                        Some(list) => seq(list, "NonKeyAttributes")?
                            .iter()
                            .map(|a| string(a, "NonKeyAttributes"))
                            .collect::<Result<Vec<_>, _>>()?,
                        None => Vec::new(),
                    },
                })
            })
            .collect::<Result<Vec<_>, TemplateError>>()?,
    };
    let table = TableDef {
        attributes,
        keys: keys(get(props, &["KeySchema"])?, "KeySchema")?,
        indexes,
        billing_mode: string(get(props, &["BillingMode"])?, "BillingMode")?,
    };

    let rules = seq(
        get(
            &doc,
            &[
                "Resources",
                BUCKET_RESOURCE,
                "Properties",
                "LifecycleConfiguration",
                "Rules",
            ],
        )?,
        "Rules",
    )?;
    let Some(rule) = rules.iter().find(|r| r.get("ExpirationInDays").is_some()) else {
        return err("the recordings bucket has no expiring lifecycle rule");
    };
    let lifecycle = LifecycleDef {
        id: string(get(rule, &["Id"])?, "Id")?,
        prefix: string(get(rule, &["Prefix"])?, "Prefix")?,
        days_parameter: reference(get(rule, &["ExpirationInDays"])?, "ExpirationInDays")?,
    };

    let default = get(&doc, &["Parameters", RETENTION_PARAMETER, "Default"])?;
    let retention_default_days = default
        .as_u64()
        .and_then(|d| u32::try_from(d).ok())
        .ok_or_else(|| TemplateError(format!("{RETENTION_PARAMETER} default is not a number of days")))?;

    let vars = get(&doc, &["Globals", "Function", "Environment", "Variables"])?;
    let mut function_env = BTreeMap::new();
    if let Some(map) = vars.as_mapping() {
        for (k, v) in map {
            function_env.insert(string(k, "variable name")?, reference(v, "variable")?);
        }
    }
    Ok(Template {
        table,
        lifecycle,
        retention_default_days,
        function_env,
    })
}

/// The deployed template.
pub fn deployed() -> Result<Template, TemplateError> {
    parse(TEMPLATE_YAML)
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{0}")]
    Aws(String),
}

fn aws_err(op: &str, e: impl std::fmt::Display) -> SetupError {
    SetupError::Aws(format!("{op}: {e}"))
}

fn key_element(k: &KeyDef) -> Result<KeySchemaElement, SetupError> {
    KeySchemaElement::builder()
        .attribute_name(&k.attribute)
        .key_type(KeyType::from(k.kind.as_str()))
        .build()
        .map_err(|e| aws_err("key schema", e))
}

/// Creates the table as template.yaml declares it (if it does not exist yet) and waits until it is active.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), SetupError> {
    let def = deployed()?.table;
    let exists = client.describe_table().table_name(name).send().await.is_ok();
    if !exists {
        let mut req = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::from(def.billing_mode.as_str()));
        for (attr, kind) in &def.attributes {
            req = req.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attr)
                    .attribute_type(ScalarAttributeType::from(kind.as_str()))
                    .build()
                    .map_err(|e| aws_err("attribute", e))?,
            );
        }
        for k in &def.keys {
            req = req.key_schema(key_element(k)?);
        }
        for i in &def.indexes {
            let mut gsi = GlobalSecondaryIndex::builder().index_name(&i.name).projection(
                Projection::builder()
                    .projection_type(ProjectionType::from(i.projection.as_str()))
                    .set_non_key_attributes((!i.non_key_attributes.is_empty()).then(|| i.non_key_attributes.clone()))
                    .build(),
            );
            for k in &i.keys {
                gsi = gsi.key_schema(key_element(k)?);
            }
            req = req.global_secondary_indexes(gsi.build().map_err(|e| aws_err("index", e))?);
        }
        req.send()
            .await
            .map_err(|e| aws_err("CreateTable", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    }
    for _ in 0..100 {
        let out = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| aws_err("DescribeTable", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(SetupError::Aws(format!("table {name} did not become active")))
}

/// Creates the bucket (if it does not exist yet) with template.yaml's retention rule for `retention_days`.
pub async fn create_bucket(client: &aws_sdk_s3::Client, name: &str, retention_days: u32) -> Result<(), SetupError> {
    let rule = deployed()?.lifecycle;
    if client.head_bucket().bucket(name).send().await.is_err() {
        client
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .map_err(|e| aws_err("CreateBucket", aws_sdk_s3::error::DisplayErrorContext(e)))?;
    }
    let lifecycle = BucketLifecycleConfiguration::builder()
        .rules(
            LifecycleRule::builder()
                .id(rule.id)
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix(rule.prefix).build())
                .expiration(LifecycleExpiration::builder().days(retention_days as i32).build())
                .build()
                .map_err(|e| aws_err("lifecycle rule", e))?,
        )
        .build()
        .map_err(|e| aws_err("lifecycle", e))?;
    client
        .put_bucket_lifecycle_configuration()
        .bucket(name)
        .lifecycle_configuration(lifecycle)
        .send()
        .await
        .map_err(|e| {
            aws_err(
                "PutBucketLifecycleConfiguration",
                aws_sdk_s3::error::DisplayErrorContext(e),
            )
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_RETENTION_DAYS;
    use crate::recording::RECORDINGS_PREFIX;
    use crate::store::layout;

    #[test]
    fn template_table_matches_the_key_layout() {
        let t = deployed().unwrap().table;
        let key = |a: &str, k: &str| KeyDef {
            attribute: a.into(),
            kind: k.into(),
        };
        assert_eq!(t.keys, vec![key(layout::PK, "HASH"), key(layout::SK, "RANGE")]);
        let gsi1 = t
            .indexes
            .iter()
            .find(|i| i.name == layout::GSI1)
            .expect("gsi1 in template");
        assert_eq!(
            gsi1.keys,
            vec![key(layout::GSI1_PK, "HASH"), key(layout::GSI1_SK, "RANGE")]
        );
        let gsi2 = t
            .indexes
            .iter()
            .find(|i| i.name == layout::GSI2)
            .expect("gsi2 in template");
        assert_eq!(
            gsi2.keys,
            vec![key(layout::GSI2_PK, "HASH"), key(layout::GSI2_SK, "RANGE")]
        );
        assert_eq!(gsi2.projection, "INCLUDE");
        assert_eq!(gsi2.non_key_attributes, [layout::RECORDING]);
        let gsi3 = t
            .indexes
            .iter()
            .find(|i| i.name == layout::GSI3)
            .expect("gsi3 in template");
        assert_eq!(
            gsi3.keys,
            vec![key(layout::GSI3_PK, "HASH"), key(layout::GSI3_SK, "RANGE")]
        );
        assert_eq!(gsi3.projection, "KEYS_ONLY");
        for list in layout::ListIndex::ALL {
            let index = t
                .indexes
                .iter()
                .find(|i| i.name == list.name())
                .unwrap_or_else(|| panic!("{} in template", list.name()));
            assert_eq!(
                index.keys,
                vec![key(list.pk_attr(), "HASH"), key(layout::LIST_SK, "RANGE")]
            );
            assert_eq!(index.projection, "ALL", "{}", list.name());
        }
        assert_eq!(
            t.indexes.len(),
            3 + layout::ListIndex::ALL.len(),
            "every index in the template is one the layout documents"
        );
        for (attr, kind) in &t.attributes {
            assert_eq!(kind, "S", "{attr}");
        }
    }

    #[test]
    fn template_retention_feeds_the_rule_and_the_functions_with_the_code_default() {
        let t = deployed().unwrap();
        assert_eq!(t.retention_default_days, DEFAULT_RETENTION_DAYS);
        assert_eq!(t.lifecycle.prefix, RECORDINGS_PREFIX);
        assert_eq!(t.lifecycle.days_parameter, RETENTION_PARAMETER);
        assert_eq!(
            t.function_env.get("RECORDING_RETENTION_DAYS").map(String::as_str),
            Some(RETENTION_PARAMETER)
        );
        assert_eq!(
            t.function_env.get("CALLS_TABLE").map(String::as_str),
            Some(TABLE_RESOURCE)
        );
        assert_eq!(
            t.function_env.get("RECORDINGS_BUCKET").map(String::as_str),
            Some(BUCKET_RESOURCE)
        );
    }

    #[test]
    fn list_calls_may_query_every_list_index_and_gets_its_cursor_key_from_the_stack() {
        let doc: serde_norway::Value = serde_norway::from_str(TEMPLATE_YAML).unwrap();
        let function = &doc["Resources"]["ListCallsFunction"]["Properties"];
        let env = &function["Environment"]["Variables"]["CURSOR_SECRET"];
        let env = serde_norway::to_string(env).unwrap();
        assert!(env.contains("resolve:secretsmanager:${CursorSecret}"), "{env}");
        let policy = serde_norway::to_string(&function["Policies"]).unwrap();
        for index in layout::ListIndex::ALL {
            assert!(policy.contains(&format!("/index/{}", index.name())), "{}", index.name());
        }
        assert!(!policy.contains("dynamodb:Scan"));
    }

    #[test]
    fn template_never_switches_on_local_auth() {
        let t = deployed().unwrap();
        assert!(!t.function_env.contains_key("CALLRECORDS_LOCAL_AUTH"));
        assert!(!TEMPLATE_YAML.contains("CALLRECORDS_LOCAL_AUTH"));
    }

    #[test]
    fn no_function_may_scan_and_every_grant_names_an_exact_resource() {
        let doc: serde_norway::Value = serde_norway::from_str(TEMPLATE_YAML).unwrap();
        let resources = doc["Resources"].as_mapping().unwrap();
        let mut functions = 0;
        for (name, resource) in resources {
            if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
                continue;
            }
            functions += 1;
            let policies = serde_norway::to_string(&resource["Properties"]["Policies"]).unwrap();
            assert!(!policies.contains("Scan"), "{name:?} may scan");
            assert!(
                !policies.contains("Resource: '*'") && !policies.contains("\"*\""),
                "{name:?}: a wildcard resource"
            );
            assert!(
                !policies.contains("dynamodb:*") && !policies.contains("s3:*"),
                "{name:?}: a wildcard action"
            );
        }
        assert_eq!(functions, 9);
    }

    #[test]
    fn uploads_reach_the_recording_check_through_eventbridge_and_the_bucket_names_no_function() {
        let doc: serde_norway::Value = serde_norway::from_str(TEMPLATE_YAML).unwrap();
        let bucket = &doc["Resources"]["RecordingsBucket"]["Properties"];
        assert_eq!(
            bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"].as_bool(),
            Some(true)
        );
        assert!(
            !serde_norway::to_string(bucket).unwrap().contains("Function"),
            "no dependency cycle"
        );
        let check = &doc["Resources"]["RecordingCheckFunction"]["Properties"];
        let rule = &check["Events"]["RecordingLanded"];
        assert_eq!(rule["Type"].as_str(), Some("EventBridgeRule"));
        let pattern = serde_norway::to_string(&rule["Properties"]["Pattern"]).unwrap();
        assert!(
            pattern.contains("Object Created") && pattern.contains("prefix: recordings/"),
            "{pattern}"
        );
        let write = serde_norway::to_string(&doc["Resources"]["WriteCallFunction"]["Properties"]["Events"]).unwrap();
        for method in ["PUT", "PATCH", "DELETE", "POST"] {
            assert!(write.contains(&format!("Method: {method}")), "{method}");
        }
    }

    #[test]
    fn only_the_webhook_route_is_outside_the_authorizer() {
        let doc: serde_norway::Value = serde_norway::from_str(TEMPLATE_YAML).unwrap();
        let resources = doc["Resources"].as_mapping().unwrap();
        let mut open = Vec::new();
        for (name, resource) in resources {
            let Some(events) = resource["Properties"]["Events"].as_mapping() else {
                continue;
            };
            for (_, event) in events {
                if event["Type"].as_str() != Some("HttpApi") {
                    continue;
                }
                let props = &event["Properties"];
                if let Some(auth) = props.get("Auth") {
                    assert_eq!(auth["Authorizer"].as_str(), Some("NONE"), "{name:?}");
                    open.push(format!(
                        "{} {}",
                        props["Method"].as_str().unwrap(),
                        props["Path"].as_str().unwrap()
                    ));
                }
            }
        }
        assert_eq!(open, ["POST /api/v1/webhooks/{provider}/{endpointId}"]);
        let hook = &doc["Resources"]["WebhookFunction"]["Properties"];
        let policies = serde_norway::to_string(&hook["Policies"]).unwrap();
        assert!(!policies.contains("s3:DeleteObject"), "{policies}");
        assert!(policies.contains("recordings/*"), "{policies}");
    }
}
