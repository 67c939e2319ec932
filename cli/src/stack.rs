//! `--stack NAME` (or `CALLRECORDS_STACK`): the table and the bucket of a deployed stack, read from its
//! CloudFormation outputs (DescribeStacks) instead of `CALLS_TABLE` and `RECORDINGS_BUCKET`. Which outputs
//! those are comes from template.yaml itself, the outputs whose value is `!Ref` of the table and of the
//! bucket (`CallsTableName`, `RecordingsBucketName`), so they are not named a second time here.
//!
//! Given `--stack` as well as `CALLS_TABLE` or `RECORDINGS_BUCKET`, the tool goes on only when they name
//! the same table and bucket as the stack; otherwise it stops with both names shown. It never picks one
//! quietly, because `erase` or `keys revoke` against the wrong table cannot be undone.

use std::collections::BTreeMap;

use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata};
use callrecords::config::{Config, ConfigError, BUCKET_VAR, TABLE_VAR};
use callrecords::template::{self, TemplateError, BUCKET_RESOURCE, TABLE_RESOURCE};

/// The table and the bucket that a stack's outputs name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub table: String,
    pub bucket: String,
}

/// The outputs to read: the ones template.yaml gives the table's and the bucket's names in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputNames {
    pub table: String,
    pub bucket: String,
}

impl OutputNames {
    pub fn from_template() -> Result<Self, TemplateError> {
        let t = template::deployed()?;
        Ok(OutputNames {
            table: t.output_naming(TABLE_RESOURCE)?.to_owned(),
            bucket: t.output_naming(BUCKET_RESOURCE)?.to_owned(),
        })
    }
}

/// What DescribeStacks says about one stack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Described {
    pub status: String,
    /// Output key → value.
    pub outputs: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("stack {stack} does not exist (region {region})")]
    NotFound { stack: String, region: String },
    #[error(
        "stack {stack} has no output {output} (the {what}'s name; stack status {status}): is it a callrecords \
         stack, deployed and done?"
    )]
    MissingOutput {
        stack: String,
        output: String,
        what: &'static str,
        status: String,
    },
    #[error("--stack {stack} names the {what} {in_stack}, but {var} is {in_env}: unset {var}, or leave out --stack")]
    Conflict {
        stack: String,
        what: &'static str,
        in_stack: String,
        var: &'static str,
        in_env: String,
    },
    #[error("DescribeStacks for stack {stack}: {detail}")]
    Aws { stack: String, detail: String },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The table and the bucket in `described`'s outputs; a missing or empty output is an error naming it.
pub fn resources(stack: &str, described: &Described, names: &OutputNames) -> Result<Resources, StackError> {
    let output = |name: &str, what: &'static str| {
        described
            .outputs
            .get(name)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| StackError::MissingOutput {
                stack: stack.to_owned(),
                output: name.to_owned(),
                what,
                status: described.status.clone(),
            })
    };
    Ok(Resources {
        table: output(&names.table, "table")?,
        bucket: output(&names.bucket, "bucket")?,
    })
}

/// Refuses a `CALLS_TABLE` or `RECORDINGS_BUCKET` (`in_env`) that names something else than the stack.
pub fn agree_with_env(
    stack: &str,
    found: &Resources,
    in_env: (Option<String>, Option<String>),
) -> Result<(), StackError> {
    let (table, bucket) = in_env;
    for (what, var, in_stack, in_env) in [
        ("table", TABLE_VAR, &found.table, table),
        ("bucket", BUCKET_VAR, &found.bucket, bucket),
    ] {
        if let Some(in_env) = in_env.filter(|v| v != in_stack) {
            return Err(StackError::Conflict {
                stack: stack.to_owned(),
                what,
                in_stack: in_stack.clone(),
                var,
                in_env,
            });
        }
    }
    Ok(())
}

/// CloudFormation answers a DescribeStacks of a stack it does not have with a `ValidationError` saying so
/// (`Stack with id NAME does not exist`); every other error is something else (credentials, access).
pub fn is_missing_stack(code: Option<&str>, message: Option<&str>) -> bool {
    code == Some("ValidationError") && message.is_some_and(|m| m.contains("does not exist"))
}

/// One DescribeStacks of `stack`.
pub async fn describe(client: &aws_sdk_cloudformation::Client, stack: &str) -> Result<Described, StackError> {
    let not_found = || StackError::NotFound {
        stack: stack.to_owned(),
        region: client
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "not set".into()),
    };
    let out = match client.describe_stacks().stack_name(stack).send().await {
        Ok(out) => out,
        Err(e) if is_missing_stack(e.code(), e.message()) => return Err(not_found()),
        Err(e) => {
            return Err(StackError::Aws {
                stack: stack.to_owned(),
                detail: DisplayErrorContext(e).to_string(),
            })
        }
    };
    let found = out.stacks().first().ok_or_else(not_found)?;
    Ok(Described {
        status: found.stack_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        outputs: found
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect(),
    })
}

/// The configuration for `--stack NAME`: the environment's, with the stack's table and bucket.
pub async fn config(stack: &str) -> Result<(Config, Resources), StackError> {
    let names = OutputNames::from_template()?;
    let sdk = callrecords::aws::sdk_config().await;
    let client = aws_sdk_cloudformation::Client::new(&sdk);
    let found = resources(stack, &describe(&client, stack).await?, &names)?;
    agree_with_env(stack, &found, Config::table_and_bucket_in_env())?;
    Ok((Config::from_env_with(&found.table, &found.bucket)?, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> OutputNames {
        OutputNames {
            table: "CallsTableName".into(),
            bucket: "RecordingsBucketName".into(),
        }
    }

    fn described(outputs: &[(&str, &str)]) -> Described {
        Described {
            status: "UPDATE_COMPLETE".into(),
            outputs: outputs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn found() -> Resources {
        Resources {
            table: "callrecords-prod-CallsTable-1ABC".into(),
            bucket: "callrecords-prod-recordingsbucket-2def".into(),
        }
    }

    #[test]
    fn the_output_names_come_from_template_yaml() {
        assert_eq!(OutputNames::from_template().unwrap(), names());
    }

    #[test]
    fn the_stacks_outputs_give_the_table_and_the_bucket() {
        let d = described(&[
            ("ApiUrl", "https://abc.execute-api.eu-north-1.amazonaws.com"),
            ("CallsTableName", "callrecords-prod-CallsTable-1ABC"),
            ("RecordingsBucketName", "callrecords-prod-recordingsbucket-2def"),
        ]);
        assert_eq!(resources("callrecords-prod", &d, &names()).unwrap(), found());
    }

    #[test]
    fn a_missing_or_empty_output_is_an_error_naming_the_stack_and_the_output() {
        let d = described(&[("CallsTableName", "t")]);
        let text = resources("callrecords-dev", &d, &names()).unwrap_err().to_string();
        assert!(text.contains("callrecords-dev"), "{text}");
        assert!(text.contains("RecordingsBucketName"), "{text}");
        assert!(text.contains("UPDATE_COMPLETE"), "{text}");

        let d = described(&[("CallsTableName", ""), ("RecordingsBucketName", "b")]);
        let text = resources("callrecords-dev", &d, &names()).unwrap_err().to_string();
        assert!(text.contains("CallsTableName"), "{text}");
        let text = resources("creating", &Described::default(), &names())
            .unwrap_err()
            .to_string();
        assert!(text.contains("creating") && text.contains("CallsTableName"), "{text}");
    }

    #[test]
    fn an_env_table_or_bucket_other_than_the_stacks_is_refused_with_both_names() {
        let err = agree_with_env("callrecords-prod", &found(), (Some("callrecords".into()), None)).unwrap_err();
        let text = err.to_string();
        for part in [
            "callrecords-prod",
            "CALLS_TABLE",
            "callrecords-prod-CallsTable-1ABC",
            "is callrecords:",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        let other_bucket = (None, Some("somewhere-else".into()));
        let text = agree_with_env("callrecords-prod", &found(), other_bucket)
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("RECORDINGS_BUCKET") && text.contains("somewhere-else"),
            "{text}"
        );
    }

    #[test]
    fn the_same_names_in_the_env_or_none_go_on() {
        let same = (Some(found().table), Some(found().bucket));
        assert!(agree_with_env("callrecords-prod", &found(), same).is_ok());
        assert!(agree_with_env("callrecords-prod", &found(), (None, None)).is_ok());
    }

    #[test]
    fn only_cloudformations_does_not_exist_answer_is_a_missing_stack() {
        let missing = Some("Stack with id callrecords-dev does not exist");
        assert!(is_missing_stack(Some("ValidationError"), missing));
        assert!(!is_missing_stack(Some("AccessDenied"), missing));
        assert!(!is_missing_stack(
            Some("ValidationError"),
            Some("1 validation error detected")
        ));
        assert!(!is_missing_stack(None, None));
    }
}
