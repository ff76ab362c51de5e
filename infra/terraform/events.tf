# Session events for the app's backend (docs/events.md): publish_app_events relays session-events
# (a second ordered push subscription on it) to the app's own topic; each webhook endpoint has an
# ordered push subscription on that topic, `webhook-<name>`, pushing to deliver_webhook, which signs
# (Standard Webhooks) and POSTs. Pub/Sub is the webhooks' queue: back-off, per-user order, at least
# once. Endpoint URLs and secrets live in the `mydevices-webhooks` secret, never in Terraform.

locals {
  webhook_timeout_seconds = 10
  webhooks_secret_id      = "mydevices-webhooks"
  events_secrets          = { webhooks = local.webhooks_secret_id, caep_receivers = "mydevices-caep-receivers" }
  events_functions        = toset(["publish-app-events", "deliver-webhook"])
}

resource "google_pubsub_topic" "app_events" {
  name                       = var.events_topic
  message_retention_duration = "604800s" # a week of replay for the app's own subscriptions

  depends_on = [google_project_service.enabled]
}

resource "google_pubsub_topic" "app_events_dead" {
  name = "${var.events_topic}-dead"

  depends_on = [google_project_service.enabled]
}

# The webhooks' endpoints (MYDEVICES_WEBHOOKS_JSON) and the CAEP receivers (MYDEVICES_CAEP_RECEIVERS_JSON),
# each a secret only deliver_webhook reads.
resource "google_secret_manager_secret" "events" {
  for_each = local.events_secrets

  secret_id = each.value

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

moved {
  from = google_secret_manager_secret.webhooks
  to   = google_secret_manager_secret.events["webhooks"]
}

resource "google_secret_manager_secret_iam_member" "events_secret_reader" {
  for_each = google_secret_manager_secret.events

  secret_id = each.value.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.fn["deliver-webhook"].member
}

moved {
  from = google_secret_manager_secret_iam_member.webhooks_reader
  to   = google_secret_manager_secret_iam_member.events_secret_reader["webhooks"]
}

resource "google_pubsub_topic_iam_member" "relay_publishes" {
  topic  = google_pubsub_topic.app_events.id
  role   = "roles/pubsub.publisher"
  member = google_service_account.fn["publish-app-events"].member
}

resource "google_cloudfunctions2_function" "publish_app_events" {
  name        = "publish-app-events"
  location    = var.region
  description = "Relays session-events to the app's events topic as documented envelopes"

  build_config {
    runtime         = "python311"
    entry_point     = "publish_app_events"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    service_account_email = google_service_account.fn["publish-app-events"].email
    available_memory      = "256Mi"
    max_instance_count    = 20
    timeout_seconds       = 60
    ingress_settings      = "ALLOW_INTERNAL_ONLY"
    environment_variables = local.common_environment
  }

  depends_on = [google_project_iam_member.build]
}

resource "google_cloudfunctions2_function" "deliver_webhook" {
  name        = "deliver-webhook"
  location    = var.region
  description = "Signs and POSTs one session event to one webhook endpoint"

  build_config {
    runtime         = "python311"
    entry_point     = "deliver_webhook"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    service_account_email = google_service_account.fn["deliver-webhook"].email
    available_memory      = "256Mi"
    max_instance_count    = 20
    timeout_seconds       = local.webhook_timeout_seconds + 20
    ingress_settings      = "ALLOW_INTERNAL_ONLY"
    environment_variables = merge(local.common_environment, {
      MYDEVICES_WEBHOOK_TIMEOUT_SECONDS = tostring(local.webhook_timeout_seconds)
      MYDEVICES_WEBHOOK_MAX_ATTEMPTS    = tostring(var.webhook_max_attempts)
    })
    secret_environment_variables {
      key        = "MYDEVICES_WEBHOOKS_JSON"
      project_id = var.project_id
      secret     = google_secret_manager_secret.events["webhooks"].secret_id
      version    = "latest"
    }
    # CAEP receivers (caep-<name> subscriptions): their URLs and audiences, and the keyring that signs the SETs
    secret_environment_variables {
      key        = "MYDEVICES_CAEP_RECEIVERS_JSON"
      project_id = var.project_id
      secret     = google_secret_manager_secret.events["caep_receivers"].secret_id
      version    = "latest"
    }
    secret_environment_variables {
      key        = "MYDEVICES_KEYS_JSON"
      project_id = var.project_id
      secret     = google_secret_manager_secret.keyring.secret_id
      version    = var.keyring_version
    }
  }

  depends_on = [google_project_iam_member.build, google_secret_manager_secret_iam_member.events_secret_reader]
}

resource "google_cloud_run_service_iam_member" "events_invoke_themselves" {
  for_each = {
    "publish-app-events" = google_cloudfunctions2_function.publish_app_events
    "deliver-webhook"    = google_cloudfunctions2_function.deliver_webhook
  }

  location = each.value.location
  service  = reverse(split("/", each.value.service_config[0].service))[0]
  role     = "roles/run.invoker"
  member   = google_service_account.fn[each.key].member
}

resource "google_service_account_iam_member" "pubsub_mints_events_tokens" {
  for_each = local.events_functions

  service_account_id = google_service_account.fn[each.value].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

resource "google_pubsub_subscription" "app_events_relay" {
  name  = "${local.session_events_topic}-app"
  topic = google_pubsub_topic.session_events.id

  enable_message_ordering = true
  ack_deadline_seconds    = 90

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.publish_app_events.service_config[0].uri}/projects/${var.project_id}/topics/${local.session_events_topic}"

    oidc_token {
      service_account_email = google_service_account.fn["publish-app-events"].email
      audience              = google_cloudfunctions2_function.publish_app_events.service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.session_events_dead.id
    max_delivery_attempts = 100
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_cloud_run_service_iam_member.events_invoke_themselves]
}

# One per webhook endpoint (webhook-<name>) and one per CAEP receiver (caep-<name>, app_events/caep.py:
# only session.closed, checked again in code as the emulator ignores filters), both for deliver_webhook.
resource "google_pubsub_subscription" "webhook" {
  for_each = merge({ for name in var.webhook_endpoints : name => { name = "webhook-${name}", filter = null } },
  { for name in var.caep_receivers : "caep-${name}" => { name = "caep-${name}", filter = "attributes.type = \"session.closed\"" } })

  name   = each.value.name
  topic  = google_pubsub_topic.app_events.id
  filter = each.value.filter

  enable_message_ordering = true                               # one user's events in order
  ack_deadline_seconds    = local.webhook_timeout_seconds + 30 # longer than one attempt

  push_config {
    push_endpoint = google_cloudfunctions2_function.deliver_webhook.service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.fn["deliver-webhook"].email
      audience              = google_cloudfunctions2_function.deliver_webhook.service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  # deliver_webhook records a dead delivery itself after var.webhook_max_attempts; this catches
  # what it could not even record.
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.app_events_dead.id
    max_delivery_attempts = 100
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_cloud_run_service_iam_member.events_invoke_themselves]
}

# Pub/Sub's service agent moves undeliverable messages to the dead-letter topic and acks them.
resource "google_pubsub_topic_iam_member" "pubsub_publishes_app_dead_letters" {
  topic  = google_pubsub_topic.app_events_dead.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

resource "google_pubsub_subscription_iam_member" "pubsub_acks_app_dead_letters" {
  for_each = merge({ relay = google_pubsub_subscription.app_events_relay.id },
  { for name, sub in google_pubsub_subscription.webhook : name => sub.id })

  subscription = each.value
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_project_service_identity.pubsub.email}"
}
