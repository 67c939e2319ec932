#!/usr/bin/env python3
"""samconfig.toml against template.yaml: it parses; `default`, `dev` and `prod` each deploy a stack of their
own; dev and prod build as default does and tag what they deploy with the project and their environment; prod
asks before it changes anything; every parameter_overrides entry is a parameter template.yaml declares.
Prints one line per check and 'samconfig: N passed, N failed'."""
import pathlib
import re
import shlex
import sys
import tomllib

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENVS = {"default": "callrecords", "dev": "callrecords-dev", "prod": "callrecords-prod"}


class TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation's short forms (!Ref, !Sub, ...) as plain values: only the structure matters here."""


TemplateLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def params(config, env, command):
    return config.get(env, {}).get(command, {}).get("parameters", {})


def overrides(text):
    """parameter_overrides as SAM reads it: Key=Value pairs separated by spaces, values optionally quoted."""
    return dict(pair.split("=", 1) for pair in shlex.split(text or ""))


def tags(text):
    return dict(pair.split("=", 1) for pair in shlex.split(text or ""))


def main():
    results = []

    def check(name, ok, detail=""):
        results.append(bool(ok))
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"))

    with open(ROOT / "samconfig.toml", "rb") as f:
        config = tomllib.load(f)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=TemplateLoader)
    declared = set(template.get("Parameters", {}))

    check("samconfig.toml parses, version 0.1", config.get("version") == 0.1, config.get("version"))
    names = {}
    for env, want in ENVS.items():
        name = params(config, env, "deploy").get("stack_name") or params(config, env, "global").get("stack_name")
        names[env] = name
        check(f"{env}: deploys stack {want}", name == want, name)
    check("each environment its own stack", len(set(names.values())) == len(names), names)

    build = params(config, "default", "build")
    for env in ("dev", "prod"):
        check(f"{env}: builds as default does (beta features for rust-cargolambda)",
              params(config, env, "build") == build, params(config, env, "build"))
        deploy = params(config, env, "deploy")
        check(f"{env}: deploys with CAPABILITY_IAM and a managed artifact bucket",
              deploy.get("capabilities") == "CAPABILITY_IAM" and deploy.get("resolve_s3") is True, deploy)
        got = tags(deploy.get("tags"))
        check(f"{env}: tags project=callrecords environment={env}",
              got.get("project") == "callrecords" and got.get("environment") == env, deploy.get("tags"))
    check("prod: shows the change set and waits for a yes", params(config, "prod", "deploy").get("confirm_changeset") is True,
          params(config, "prod", "deploy"))
    check("prod: no sync section (sam sync skips change sets)", "sync" not in config.get("prod", {}), config.get("prod"))

    for env in ENVS:
        given = overrides(params(config, env, "deploy").get("parameter_overrides"))
        unknown = sorted(set(given) - declared)
        check(f"{env}: parameter_overrides name only template.yaml's parameters ({', '.join(sorted(given)) or 'none'})",
              not unknown, f"not in template.yaml's Parameters: {', '.join(unknown)}")
        days = given.get("LogRetentionDays")
        # CloudWatch Logs takes only these retention periods.
        allowed = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
        if days is not None:
            check(f"{env}: LogRetentionDays={days} is a period CloudWatch Logs takes",
                  re.fullmatch(r"\d+", days) and int(days) in allowed, days)

    passed = sum(results)
    print(f"samconfig: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
