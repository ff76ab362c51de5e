"""infra/terraform checked offline: formatting, the providers' schemas, and what it deploys against the code.

Providers cannot be downloaded on these machines, so `terraform validate`/`plan` cannot run here.
What can: `terraform fmt -check`; holding every block to the providers' schemas as cdktf's
bindings carry them (tests/support/terraform_schema.py), which is most of what `validate` checks; and
reading the HCL (python-hcl2) to hold it to the code: entry points exist in functions/main.py with
the right signature, the Firestore trigger watches the documents the code writes, the push
subscription feeds the push function, the indexes the queries need are declared and Terraform
takes indexes and TTL policies from firestore.indexes.json.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from hcl2.utils import SerializationOptions

from infra.local import stack
from mydevices import config, indexes, store
from support import terraform_schema

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = ROOT / "infra" / "terraform"
MAIN_PY = ROOT / "functions" / "main.py"
PACKAGE = ROOT / "functions" / "mydevices"
INDEXES_JSON = ROOT / "firestore.indexes.json"

FUNCTION = "google_cloudfunctions2_function"
HCL_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


# --- reading the configuration ----------------------------------------------------------------


@cache
def hcl_files(*, explicit_blocks: bool = False) -> dict[str, dict[str, Any]]:
    """File name -> python-hcl2 document; explicit_blocks marks blocks (`__is_block__`) apart from values."""
    options = dataclasses.replace(HCL_OPTIONS, explicit_blocks=explicit_blocks)
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(TERRAFORM_DIR.glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            docs[path.name] = hcl2.load(handle, serialization_options=options)
    return docs


@cache
def terraform() -> dict[str, Any]:
    """Every .tf file merged: {"resource"/"data": {type: {name: body}}, "locals"/"variable"/"output": {name: ...}}."""
    merged: dict[str, Any] = {"resource": {}, "data": {}, "locals": {}, "variable": {}, "output": {}}
    for doc in hcl_files().values():
        for section in ("resource", "data"):
            for entry in doc.get(section, []):
                for kind, named in entry.items():
                    for name, body in named.items():
                        assert name not in merged[section].setdefault(kind, {}), f"{kind}.{name} declared twice"
                        merged[section][kind][name] = body
        for section in ("locals", "variable", "output"):
            for entry in doc.get(section, []):
                assert not set(entry) & set(merged[section]), f"{section} declared twice: {set(entry)}"
                merged[section].update(entry)
    return merged


def resources(kind: str) -> dict[str, Any]:
    return dict(terraform()["resource"].get(kind, {}))


def local(name: str) -> Any:
    return terraform()["locals"][name]


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The one nested block `name` (python-hcl2 gives blocks as lists)."""
    found = body[name]
    assert isinstance(found, list) and len(found) == 1, f"expected one {name} block, got {found!r}"
    return dict(found[0])


def ref(expression: str) -> str:
    """`${local.x}` -> `local.x`; anything else unchanged."""
    match = re.fullmatch(r"\$\{(.*)\}", expression)
    return match.group(1) if match else expression


def deployed_functions() -> dict[str, tuple[str, dict[str, Any]]]:
    """Deployed name -> (entry point, resource body), for_each resources expanded from their local map."""
    deployed: dict[str, tuple[str, dict[str, Any]]] = {}
    for body in resources(FUNCTION).values():
        entry = block(body, "build_config")["entry_point"]
        if "for_each" in body:
            source = ref(body["for_each"])
            assert source.startswith("local."), f"for_each over {source}: test_infra.py reads only locals"
            assert (body["name"], entry) == ("${each.key}", "${each.value}")
            for name, entry_point in local(source.removeprefix("local.")).items():
                deployed[name] = (entry_point, body)
        else:
            deployed[body["name"]] = (entry, body)
    return deployed


@cache
def main_entry_points() -> dict[str, str]:
    """Top-level functions of main.py decorated with functions_framework.http / .cloud_event."""
    found: dict[str, str] = {}
    for node in ast.parse(MAIN_PY.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if (
                isinstance(decorator, ast.Attribute)
                and isinstance(decorator.value, ast.Name)
                and decorator.value.id == "functions_framework"
                and decorator.attr in ("http", "cloud_event")
            ):
                found[node.name] = decorator.attr
    return found


def normalised(pattern: str) -> str:
    """`users/{uid}/sessions/{sid}` -> `users/*/sessions/*`: wildcard names do not matter."""
    return re.sub(r"\{[^}/]+\}", "*", pattern)


def test_every_reference_names_something_declared() -> None:
    """What `terraform validate` would catch first: a resource, data source, local or variable that is not there."""
    config = terraform()
    text = json.dumps([config["resource"], config["data"], config["locals"], config["output"]])
    declared = {(kind, name) for kind, named in config["resource"].items() for name in named}
    data = {(kind, name) for kind, named in config["data"].items() for name in named}
    unknown = sorted(
        {f"{kind}.{name}" for kind, name in re.findall(r"(?<![\w.])(google(?:[-_][a-z0-9]+)+)\.([A-Za-z0-9_]+)", text)
         if kind != "google-beta" and (kind, name) not in declared}
        | {f"data.{kind}.{name}" for kind, name in re.findall(r"\bdata\.([a-z0-9_]+)\.([A-Za-z0-9_]+)", text)
           if (kind, name) not in data}
        | {f"local.{name}" for name in re.findall(r"\blocal\.([A-Za-z0-9_]+)", text) if name not in config["locals"]}
        | {f"var.{name}" for name in re.findall(r"\bvar\.([A-Za-z0-9_]+)", text) if name not in config["variable"]}
    )
    assert not unknown, f"references to undeclared things: {unknown}"


# --- formatting -----------------------------------------------------------------------------------


def test_terraform_files_are_formatted() -> None:
    binary = shutil.which("terraform") or next((p for p in ("/usr/local/bin/terraform",) if Path(p).exists()), None)
    if binary is None:
        pytest.skip("terraform is not installed: cannot run `terraform fmt -check` (install Terraform >= 1.5)")
    result = subprocess.run(  # noqa: S603 - fixed argv
        [binary, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM_DIR)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive infra/terraform`:\n{result.stdout}{result.stderr}"


# --- the providers' schemas (what `terraform validate` would check) -------------------------------


def test_every_block_matches_its_providers_schema() -> None:
    """Types, argument and block names at every level, required ones present, nothing computed-only set.

    The schemas come from the @cdktf provider packages infra/terraform-schema pins (tests/support/terraform_schema.py
    says how they are read); a resource with `provider = google-beta` is held to google-beta's.
    """
    docs = hcl_files(explicit_blocks=True)
    found = terraform_schema.configuration_problems(docs, terraform_schema.required_providers(docs))
    assert not found, "infra/terraform does not match the providers' schemas:\n" + "\n".join(found)


def test_every_attribute_read_exists_in_its_schema() -> None:
    """`google_x.name.service_config[0].uri`: each part after the name, at every block level."""
    docs = hcl_files(explicit_blocks=True)
    found = terraform_schema.reference_problems(docs, terraform_schema.required_providers(docs))
    assert not found, "\n".join(found)


def test_provider_versions_are_pinned_to_the_checked_schemas() -> None:
    """A range would let `terraform init` pick a provider whose schema nobody checked."""
    providers = terraform_schema.required_providers(hcl_files(explicit_blocks=True))
    assert {"google", "google-beta", "archive", "time"} <= set(providers)
    found = terraform_schema.version_problems(providers)
    assert not found, "\n".join(found)


PLANTED = {
    "misspelled type": (
        'resource "google_pubsub_topik" "t" {\n  name = "x"\n}',
        "has no type `google_pubsub_topik` (did you mean `google_pubsub_topic`?)",
    ),
    "misspelled nested argument": (
        'resource "google_pubsub_subscription" "s" {\n  name  = "s"\n  topic = "t"\n'
        '  push_config {\n    push_endpoint = "https://x"\n    oidc_token {\n      service_acount_email = "a"\n'
        '    }\n  }\n}',
        "google_pubsub_subscription.s.push_config.oidc_token: `service_acount_email` is not an argument",
    ),
    "missing required argument": (
        'resource "google_pubsub_subscription" "s" {\n  name = "s"\n}',
        "google_pubsub_subscription.s: required argument `topic` is missing",
    ),
    "missing required block": (
        'resource "google_secret_manager_secret" "k" {\n  secret_id = "k"\n}',
        "required block `replication` is missing",
    ),
    "computed-only attribute set": (
        'resource "google_cloudfunctions2_function" "f" {\n  name     = "f"\n  location = "l"\n'
        '  service_config {\n    uri = "https://x"\n  }\n}',
        "google_cloudfunctions2_function.f.service_config: `uri` is computed-only",
    ),
    "block written as an argument": (
        'resource "google_secret_manager_secret" "k" {\n  secret_id   = "k"\n  replication = {}\n}',
        "`replication` is a block",
    ),
    "two blocks where one is allowed": (
        'resource "google_storage_bucket" "b" {\n  name     = "b"\n  location = "l"\n'
        '  versioning {\n    enabled = true\n  }\n  versioning {\n    enabled = false\n  }\n}',
        "at most one `versioning` block",
    ),
    "beta-only resource without the beta provider": (
        'resource "google_project_service_identity" "p" {\n  service = "pubsub.googleapis.com"\n}',
        "hashicorp/google 6.50.0 has no type `google_project_service_identity`",
    ),
    "attribute read that does not exist": (
        'resource "google_cloudfunctions2_function" "f" {\n  name     = "f"\n  location = "l"\n}\n'
        'output "u" {\n  value = google_cloudfunctions2_function.f.service_config[0].url\n}',
        "`google_cloudfunctions2_function.f.service_config.url` reads an attribute its schema does not have",
    ),
    "misspelled dynamic block": (
        'resource "google_firestore_index" "i" {\n  collection = "c"\n  dynamic "feilds" {\n'
        '    for_each = []\n    content {}\n  }\n  fields {\n    field_path = "a"\n  }\n}',
        "dynamic `feilds` is not a block here (did you mean `fields`?)",
    ),
}


@pytest.mark.parametrize("mistake", list(PLANTED))
def test_the_schema_check_catches_a_planted_mistake(mistake: str) -> None:
    """The check above must be able to fail: an empty or misread schema would pass everything."""
    source, expected = PLANTED[mistake]
    options = dataclasses.replace(HCL_OPTIONS, explicit_blocks=True)
    planted = {"planted.tf": hcl2.loads(source, serialization_options=options)}
    providers = terraform_schema.required_providers(hcl_files(explicit_blocks=True))
    found = [*terraform_schema.configuration_problems(planted, providers),
             *terraform_schema.reference_problems(planted, providers)]
    assert any(expected in problem for problem in found), found


# --- functions ------------------------------------------------------------------------------------


def test_every_deployed_entry_point_is_a_function_main_py_serves() -> None:
    deployed = deployed_functions()
    assert {"api", "on-session-written", "send-session-push"} <= set(deployed)
    entry_points = main_entry_points()
    missing = {name: entry for name, (entry, _) in deployed.items() if entry not in entry_points}
    assert not missing, f"Terraform deploys entry points that functions/main.py does not define: {missing}"


def test_every_entry_point_of_main_py_is_deployed_or_declared_local_only() -> None:
    deployed = {entry for entry, _ in deployed_functions().values()}
    local_only = set(local("local_only_entry_points"))
    assert not deployed & local_only
    forgotten = set(main_entry_points()) - deployed - local_only
    assert not forgotten, f"main.py entry points that functions.tf neither deploys nor lists: {forgotten}"


def test_event_functions_are_cloud_event_functions_and_only_http_ones_are_public() -> None:
    kinds = main_entry_points()
    public = {
        ref(body["service"])
        for body in resources("google_cloud_run_service_iam_member").values()
        if body["member"] == "allUsers"
    }
    # pushed to by subscriptions of pubsub.tf and events.tf; deliver_webhook reads the raw push (its
    # subscription names the endpoint), so it is an HTTP function that only Pub/Sub may call
    pushed_to = {"send_session_push": "cloud_event", "publish_app_events": "cloud_event", "deliver_webhook": "http"}
    # called by Cloud Scheduler from outside the VPC (so ALLOW_ALL), with an OIDC token of the one
    # account that may invoke it (infra/terraform/deleted_users.tf): HTTP, and not public
    scheduled = {"sweep_deleted_users"}
    for name, (entry, body) in deployed_functions().items():
        if entry in scheduled:
            assert kinds[entry] == "http" and block(body, "service_config")["ingress_settings"] == "ALLOW_ALL"
            assert not any(f"{FUNCTION}.{_resource_name(body)}" in service for service in public), name
            continue
        event_driven = "event_trigger" in body or entry in pushed_to
        assert kinds[entry] == pushed_to.get(entry, "cloud_event" if event_driven else "http"), name
        is_public = any(f"{FUNCTION}.{_resource_name(body)}" in service for service in public)
        assert is_public == (not event_driven), f"{name}: public={is_public}"
        ingress = block(body, "service_config")["ingress_settings"]
        assert ingress == ("ALLOW_INTERNAL_ONLY" if event_driven else "ALLOW_ALL"), name


def _resource_name(body: dict[str, Any]) -> str:
    return next(name for name, candidate in resources(FUNCTION).items() if candidate is body)


def test_every_function_runs_as_its_own_service_account_and_knows_its_project() -> None:
    for name, (_, body) in deployed_functions().items():
        service = block(body, "service_config")
        key = "each.key" if "for_each" in body else f'"{name}"'
        assert service["service_account_email"] == f"${{google_service_account.fn[{key}].email}}", name
        # config.py falls back to the demo project without GOOGLE_CLOUD_PROJECT, which 2nd gen does not set.
        assert "local.common_environment" in service["environment_variables"], name
    assert "GOOGLE_CLOUD_PROJECT = var.project_id" in local("common_environment")


def test_no_function_account_gets_a_basic_role_and_each_gets_only_its_own_powers() -> None:
    assert not re.search(r"roles/(owner|editor|viewer)\b", json.dumps(terraform()["resource"]))
    project_roles = local("project_roles")  # merge({"api" = [...], ...}, {callables})

    def roles_of(account: str) -> set[str]:
        match = re.search(rf'"{account}"\s*=\s*\[([^\]]*)\]', project_roles)
        assert match, account
        return set(re.findall(r'"(roles/[^"]+)"', match.group(1)))

    assert roles_of("api") == {"roles/datastore.user", "roles/firebaseauth.viewer"}
    assert roles_of("on-session-written") == {"roles/datastore.user", "roles/eventarc.eventReceiver"}
    assert roles_of("send-session-push") == {"roles/datastore.user", "roles/firebasecloudmessaging.admin"}
    # The trigger classifies and publishes: it never signs or verifies, so it never reads the keys.
    assert "on-session-written" not in local("keyring_readers")


# --- the Firestore trigger and Pub/Sub ------------------------------------------------------------


def test_the_firestore_trigger_watches_the_session_documents_the_code_writes() -> None:
    trigger = block(resources(FUNCTION)["on_session_written"], "event_trigger")
    assert trigger["event_type"] == stack.FIRESTORE_WRITTEN
    assert trigger["retry_policy"] == "RETRY_POLICY_RETRY"
    filters = {f["attribute"]: f for f in trigger["event_filters"]}
    assert filters["database"]["value"] == "${google_firestore_database.main.name}"
    document = filters["document"]
    assert document["operator"] == "match-path-pattern"
    pattern = local(ref(document["value"]).removeprefix("local."))
    written = f"{store.USERS}/{{uid}}/{store.SESSIONS}/{{sid}}"  # store.session_ref's path
    assert normalised(pattern) == normalised(written) == normalised(stack.SESSION_DOCUMENT_PATTERN)


def test_session_events_reach_send_session_push_in_order_with_a_dead_letter_topic() -> None:
    topic_name = local("session_events_topic")
    assert topic_name == config.Settings.session_events_topic == stack.SESSION_EVENTS_TOPIC
    assert resources("google_pubsub_topic")["session_events"]["name"] == "${local.session_events_topic}"
    subscription = resources("google_pubsub_subscription")["session_events_push"]
    assert subscription["topic"] == "${google_pubsub_topic.session_events.id}"
    assert subscription["enable_message_ordering"] is True  # the code publishes with the uid as ordering key
    push = block(subscription, "push_config")
    assert push["push_endpoint"].startswith(f"${{{FUNCTION}.send_session_push.service_config[0].uri}}/")
    pusher = block(push, "oidc_token")["service_account_email"]
    assert pusher == '${google_service_account.fn["send-session-push"].email}'  # it may invoke only itself
    dead = block(subscription, "dead_letter_policy")
    assert dead["dead_letter_topic"] == "${google_pubsub_topic.session_events_dead.id}"
    # The function publishing, and only it, may publish to the topic.
    publishers = [b for b in resources("google_pubsub_topic_iam_member").values()
                  if b["topic"] == "${google_pubsub_topic.session_events.id}"]
    assert [b["member"] for b in publishers] == ["${google_service_account.fn[\"on-session-written\"].member}"]


def test_a_slow_push_is_not_redelivered_while_it_still_runs() -> None:
    """Pub/Sub redelivers a push unanswered within the ack deadline: it must outlast the function's timeout."""
    timeout, deadline = local("push_timeout_seconds"), local("push_ack_deadline_seconds")
    assert isinstance(timeout, int) and isinstance(deadline, int)
    assert timeout + 30 <= deadline <= 600  # room for a cold start; 600 s is Pub/Sub's maximum
    push = block(resources(FUNCTION)["send_session_push"], "service_config")
    assert push["timeout_seconds"] == "${local.push_timeout_seconds}"
    subscription = resources("google_pubsub_subscription")["session_events_push"]
    assert subscription["ack_deadline_seconds"] == "${local.push_ack_deadline_seconds}"


def test_the_firestore_trigger_waits_until_the_eventarc_agent_may_act() -> None:
    """terraform-provider-google#25294: on a fresh project the agent's role works only minutes after the grant."""
    grant = resources("google_project_iam_member")["eventarc_agent"]
    assert grant["role"] == "roles/eventarc.serviceAgent"
    assert grant["member"] == "${google_project_service_identity.eventarc.member}"
    wait = resources("time_sleep")["eventarc_agent_grant"]
    assert wait["depends_on"] == ["${google_project_iam_member.eventarc_agent}"]
    assert int(wait["create_duration"].removesuffix("s")) >= 60
    assert "${time_sleep.eventarc_agent_grant}" in resources(FUNCTION)["on_session_written"]["depends_on"]


# --- Firestore indexes and TTL --------------------------------------------------------------------


def indexes_json() -> dict[str, Any]:
    return dict(json.loads(INDEXES_JSON.read_text(encoding="utf-8")))


def test_every_index_the_code_needs_is_in_firestore_indexes_json() -> None:
    declared = [
        (index["collectionGroup"], index.get("queryScope", "COLLECTION"), index["fields"])
        for index in indexes_json()["indexes"]
    ]
    for needed in indexes.REQUIRED:
        assert (needed.collection_group, "COLLECTION", needed.fields()) in declared, needed


def test_terraform_takes_indexes_and_ttl_policies_from_firestore_indexes_json() -> None:
    source = local("firestore_config")
    assert source == '${jsondecode(file("${path.module}/../../firestore.indexes.json"))}'
    assert (TERRAFORM_DIR / "../../firestore.indexes.json").resolve() == INDEXES_JSON
    # Each resource kind exists once, generated from the file (nothing written by hand beside it).
    assert list(resources("google_firestore_index")) == ["composite"]
    assert list(resources("google_firestore_field")) == ["overrides"]
    index = resources("google_firestore_index")["composite"]
    assert index["for_each"] == "${local.composite_indexes}"
    assert "for index in local.firestore_config.indexes" in local("composite_indexes")
    field = resources("google_firestore_field")["overrides"]
    assert field["for_each"] == "${local.field_overrides}"
    assert "for field in local.firestore_config.fieldOverrides" in local("field_overrides")
    dynamic = {name: body for entry in field["dynamic"] for name, body in entry.items()}
    assert dynamic["ttl_config"]["for_each"] == '${lookup(each.value, "ttl", false) ? [1] : []}'


def test_firestore_indexes_json_gives_terraform_unique_keys_and_ttl_policies_on_expire_at() -> None:
    """Terraform keys resources by these; a duplicate entry would stop `terraform plan`."""
    doc = indexes_json()
    index_keys = [
        index["collectionGroup"] + ":" + ",".join(
            f"{f['fieldPath']}:{f.get('order', f.get('arrayConfig', ''))}" for f in index["fields"]
        )
        for index in doc["indexes"]
    ]
    assert len(index_keys) == len(set(index_keys)), index_keys
    override_keys = [f"{f['collectionGroup']}.{f['fieldPath']}" for f in doc["fieldOverrides"]]
    assert len(override_keys) == len(set(override_keys)), override_keys
    ttl = {f["collectionGroup"] for f in doc["fieldOverrides"] if f.get("ttl")}
    assert {store.SESSIONS, store.SECRETS, store.SECURITY_EVENTS} <= ttl
    assert all(f["fieldPath"] == "expireAt" for f in doc["fieldOverrides"] if f.get("ttl"))


def test_the_query_built_from_a_declared_index_is_the_query_it_serves() -> None:
    client = firestore.Client(project="demo-offline", credentials=AnonymousCredentials())  # builds, never calls
    sessions = client.collection(store.USERS).document("u").collection(store.SESSIONS)
    for needed in indexes.REQUIRED:
        proto = needed.query(sessions, *("x" for _ in needed.equals))._to_protobuf()
        filters = [proto.where.field_filter] if proto.where.field_filter.field.field_path else [
            f.field_filter for f in proto.where.composite_filter.filters
        ]
        assert [(f.field.field_path, f.op.name) for f in filters] == [(name, "EQUAL") for name in needed.equals]
        assert [(o.field.field_path, o.direction.name) for o in proto.order_by] == [needed.order_by]


def test_queries_that_need_a_composite_index_are_built_from_a_declaration() -> None:
    """A chain that filters and orders (or orders twice) outside indexes.py has no declared index."""
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name == "indexes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "order_by":
                methods = []
                inner: ast.expr = node.func.value
                while isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute):
                    methods.append(inner.func.attr)
                    inner = inner.func.value
                if "where" in methods or "order_by" in methods:
                    offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, f"build these queries with mydevices.indexes (and declare the index): {offenders}"
