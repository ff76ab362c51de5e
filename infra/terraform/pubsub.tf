# Pub/Sub: on_session_written publishes each session change to `session-events` (ordering key: the
# uid); send_session_push receives them through a push subscription that THIS file owns.
#
# Why not the function's own Pub/Sub trigger (event_trigger)? Eventarc would create that
# subscription itself, and its subscription is output-only: no dead-letter topic, no message
# ordering, no retry backoff can be declared for it (terraform-provider-google#17697). Google's
# recommended "direct Pub/Sub trigger" is exactly this: a push subscription we manage, pushing the
# standard Pub/Sub envelope with an OIDC token; functions-framework turns that envelope into the
# messagePublished CloudEvent that `@functions_framework.cloud_event def send_session_push` expects.
# The local stack (infra/local/stack/emulators.py) wires the emulator the same way, with the same settings.

locals {
  session_events_topic = "session-events"

  # send_session_push: send_each of up to 500 messages, with firebase-admin's own retries.
  push_timeout_seconds = 120
  # A push is acked by its answer. Were the deadline no longer than the function's timeout, a slow
  # run would be redelivered while it still runs (a second function sending the same pushes): give
  # it the timeout plus a minute for a cold start and the answer's way back (Pub/Sub allows 600).
  push_ack_deadline_seconds = 180
}

resource "google_pubsub_topic" "session_events" {
  name                       = local.session_events_topic
  message_retention_duration = "86400s" # a day of replay (`gcloud pubsub subscriptions seek`)

  depends_on = [google_project_service.enabled]
}

resource "google_pubsub_topic" "session_events_dead" {
  name = "${local.session_events_topic}-dead"

  depends_on = [google_project_service.enabled]
}

resource "google_pubsub_subscription" "session_events_push" {
  name  = "${local.session_events_topic}-push"
  topic = google_pubsub_topic.session_events.id

  enable_message_ordering = true # one user's events in publish order
  ack_deadline_seconds    = local.push_ack_deadline_seconds

  push_config {
    # The topic in the path becomes the CloudEvent's source, as with an Eventarc trigger.
    push_endpoint = "${google_cloudfunctions2_function.send_session_push.service_config[0].uri}/projects/${var.project_id}/topics/${local.session_events_topic}"

    oidc_token {
      service_account_email = google_service_account.fn["send-session-push"].email
      audience              = google_cloudfunctions2_function.send_session_push.service_config[0].uri
    }
  }

  # A failed push (transient FCM error: the function answers 500) comes back with backoff ...
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  # ... and after this many attempts it is parked on the dead-letter topic instead of blocking the
  # user's ordered queue for the topic's whole retention.
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.session_events_dead.id
    max_delivery_attempts = var.push_max_delivery_attempts
  }

  expiration_policy {
    ttl = "" # never expires, however quiet the product is
  }

  depends_on = [
    google_cloud_run_service_iam_member.push_invokes_itself,
    google_service_account_iam_member.pubsub_mints_push_tokens,
  ]
}

# Dead letters stay readable: `gcloud pubsub subscriptions pull session-events-dead-pull --auto-ack`.
resource "google_pubsub_subscription" "session_events_dead_pull" {
  name                       = "${local.session_events_topic}-dead-pull"
  topic                      = google_pubsub_topic.session_events_dead.id
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

# Pub/Sub's own service agent moves undeliverable messages to the dead-letter topic, ...
resource "google_pubsub_topic_iam_member" "pubsub_publishes_dead_letters" {
  topic  = google_pubsub_topic.session_events_dead.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

# ... which also needs to acknowledge them on the source subscription ...
resource "google_pubsub_subscription_iam_member" "pubsub_acks_dead_letters" {
  subscription = google_pubsub_subscription.session_events_push.id
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

# ... and mints the OIDC tokens of pushes: ours, and the one Eventarc's own subscription sends to
# on-session-written (needed for projects made before April 2021; harmless after).
resource "google_service_account_iam_member" "pubsub_mints_push_tokens" {
  for_each = toset(["send-session-push", "on-session-written"])

  service_account_id = google_service_account.fn[each.value].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_project_service_identity.pubsub.email}"
}
