# The functions (2nd gen), all built from ../../functions (main.py + the mydevices package +
# requirements.txt). tests/platform/test_infra.py checks every entry point below against functions/main.py,
# and that every entry point main.py defines is deployed here or listed in local_only_entry_points.

locals {
  # The Firebase callables, one function per name: the Firebase SDK calls
  # https://REGION-PROJECT.cloudfunctions.net/<name>, so the deployed name is the entry point's.
  callables = {
    "sessions_list"           = "sessions_list"
    "sessions_revoke"         = "sessions_revoke"
    "sessions_revoke_others"  = "sessions_revoke_others"
    "sessions_logout"         = "sessions_logout"
    "sessions_reauthenticate" = "sessions_reauthenticate"
    "sessions_auto_close"     = "sessions_auto_close"
    "account_export"          = "account_export"
    "sessions_activity"       = "sessions_activity"
  }

  # Every deployed function: name => entry point.
  functions = merge(
    {
      "api"                = "api"
      "on-session-written" = "on_session_written"
      "send-session-push"  = "send_session_push"
      "publish-app-events" = "publish_app_events" # events.tf
      "deliver-webhook"    = "deliver_webhook"    # events.tf
      "support-api"        = "support_api"        # support.tf
    },
    local.callables,
    { "sweep-deleted-users" = "sweep_deleted_users" }, # deleted_users.tf
  )

  # Entry points of main.py that exist for the local stack only.
  local_only_entry_points = [
    "callables", # serves all the callables by path, for the emulator's URL scheme
  ]

  session_document_pattern = "users/{uid}/sessions/{sid}"

  # Settings every function reads (the rest keep the defaults in docs/configuration.md).
  common_environment = merge(
    {
      GOOGLE_CLOUD_PROJECT           = var.project_id # the code's project; 2nd gen does not set it
      MYDEVICES_SESSION_EVENTS_TOPIC = local.session_events_topic
      MYDEVICES_EVENTS_TOPIC         = var.events_topic
      MYDEVICES_APP_CHECK            = var.app_check # read by the api and the callables
    },
    var.extra_environment,
  )
}

# --- source ---------------------------------------------------------------------------------------

resource "google_storage_bucket" "source" {
  name                        = "${var.project_id}-mydevices-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true # it only holds build inputs

  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

data "archive_file" "functions" {
  type        = "zip"
  source_dir  = "${path.module}/../../functions"
  output_path = "${path.module}/.build/functions.zip"
  excludes    = ["**/__pycache__/**", "**/*.pyc", ".mypy_cache/**", ".pytest_cache/**", ".ruff_cache/**", "venv/**", "venv"]
  # Every entry gets this mode, not the checkout's (umask, git's executable bits): the same code
  # zips to the same bytes on any machine, so a deploy from elsewhere rebuilds nothing.
  output_file_mode = "0644"
}

# Named by content: a code change is a new object, and so a new build of every function.
resource "google_storage_bucket_object" "functions" {
  name   = "functions-${data.archive_file.functions.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.functions.output_path
}

# --- api: the HTTP API (public: it authenticates every call itself) ------------------------------

resource "google_cloudfunctions2_function" "api" {
  name        = "api"
  location    = var.region
  description = "My Devices HTTP API (/v1/...)"

  build_config {
    runtime         = "python311"
    entry_point     = "api"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.fn["api"].email
    available_memory                 = "1Gi" # room for a GeoIP database copied to /tmp (memory-backed)
    available_cpu                    = "1"
    max_instance_request_concurrency = var.api_concurrency
    max_instance_count               = var.api_max_instances
    timeout_seconds                  = 60
    ingress_settings                 = "ALLOW_ALL"
    environment_variables = merge(local.common_environment, {
      MYDEVICES_TRUSTED_PROXIES = tostring(var.trusted_proxies)
      # The web page reaches api through Firebase Hosting rewrites, which pass only `__session`.
      MYDEVICES_WEB_COOKIE   = "session"
      MYDEVICES_GEOIP_DB     = var.geoip_db
      MYDEVICES_CORS_ORIGINS = join(",", var.cors_origins)
    })
    secret_environment_variables {
      key        = "MYDEVICES_KEYS_JSON"
      project_id = var.project_id
      secret     = google_secret_manager_secret.keyring.secret_id
      version    = var.keyring_version
    }
  }

  depends_on = [
    google_firebase_project.this, # Firebase Auth
    google_project_iam_member.build,
    google_secret_manager_secret_iam_member.keyring_readers,
  ]
}

resource "google_cloud_run_service_iam_member" "api_public" {
  location = google_cloudfunctions2_function.api.location
  service  = reverse(split("/", google_cloudfunctions2_function.api.service_config[0].service))[0]
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# --- on_session_written: Firestore trigger -> Pub/Sub ---------------------------------------------

resource "google_cloudfunctions2_function" "on_session_written" {
  name        = "on-session-written"
  location    = var.region
  description = "Classifies each session change and publishes it to session-events"

  build_config {
    runtime         = "python311"
    entry_point     = "on_session_written"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    service_account_email = google_service_account.fn["on-session-written"].email
    available_memory      = "256Mi"
    max_instance_count    = 20
    timeout_seconds       = 60
    ingress_settings      = "ALLOW_INTERNAL_ONLY" # only Eventarc calls it
    environment_variables = local.common_environment
  }

  event_trigger {
    trigger_region        = var.firestore_location # Firestore triggers live where the database does
    event_type            = "google.cloud.firestore.document.v1.written"
    retry_policy          = "RETRY_POLICY_RETRY" # a failed publish is retried (for up to 24 h)
    service_account_email = google_service_account.fn["on-session-written"].email

    event_filters {
      attribute = "database"
      value     = google_firestore_database.main.name
    }
    event_filters {
      attribute = "document"
      value     = local.session_document_pattern
      operator  = "match-path-pattern"
    }
  }

  depends_on = [
    google_project_iam_member.build,
    google_project_iam_member.fn,
    time_sleep.eventarc_agent_grant,
  ]
}

resource "google_cloud_run_service_iam_member" "trigger_invokes_itself" {
  location = google_cloudfunctions2_function.on_session_written.location
  service  = reverse(split("/", google_cloudfunctions2_function.on_session_written.service_config[0].service))[0]
  role     = "roles/run.invoker"
  member   = google_service_account.fn["on-session-written"].member
}

# --- send_session_push: Pub/Sub push (pubsub.tf) -> FCM ----------------------------------------
# Deployed without an event_trigger: the push subscription in pubsub.tf delivers to it (see there
# why). The code's @functions_framework.cloud_event decorator makes it a CloudEvent function anyway.

resource "google_cloudfunctions2_function" "send_session_push" {
  name        = "send-session-push"
  location    = var.region
  description = "Sends force_logout and \"Was that you?\" pushes for session-events"

  build_config {
    runtime         = "python311"
    entry_point     = "send_session_push"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    service_account_email = google_service_account.fn["send-session-push"].email
    available_memory      = "512Mi"
    max_instance_count    = 20
    timeout_seconds       = local.push_timeout_seconds
    ingress_settings      = "ALLOW_INTERNAL_ONLY" # only Pub/Sub pushes to it
    environment_variables = local.common_environment
    secret_environment_variables {
      key        = "MYDEVICES_KEYS_JSON"
      project_id = var.project_id
      secret     = google_secret_manager_secret.keyring.secret_id
      version    = var.keyring_version
    }
  }

  depends_on = [
    google_firebase_project.this, # FCM
    google_project_iam_member.build,
    google_secret_manager_secret_iam_member.keyring_readers,
  ]
}

resource "google_cloud_run_service_iam_member" "push_invokes_itself" {
  location = google_cloudfunctions2_function.send_session_push.location
  service  = reverse(split("/", google_cloudfunctions2_function.send_session_push.service_config[0].service))[0]
  role     = "roles/run.invoker"
  member   = google_service_account.fn["send-session-push"].member
}

# --- the Firebase callables (public: the callable protocol authenticates each call) ----------------

resource "google_cloudfunctions2_function" "callable" {
  for_each = local.callables

  name        = each.key
  location    = var.region
  description = "My Devices Firebase callable ${each.key}"

  build_config {
    runtime         = "python311"
    entry_point     = each.value
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.fn[each.key].email
    available_memory                 = "512Mi"
    available_cpu                    = "1"
    max_instance_request_concurrency = 40
    max_instance_count               = 10
    timeout_seconds                  = 60
    ingress_settings                 = "ALLOW_ALL"
    environment_variables            = local.common_environment
    secret_environment_variables {
      key        = "MYDEVICES_KEYS_JSON"
      project_id = var.project_id
      secret     = google_secret_manager_secret.keyring.secret_id
      version    = var.keyring_version
    }
  }

  depends_on = [
    google_project_iam_member.build,
    google_secret_manager_secret_iam_member.keyring_readers,
  ]
}

resource "google_cloud_run_service_iam_member" "callables_public" {
  for_each = local.callables

  location = google_cloudfunctions2_function.callable[each.key].location
  service  = reverse(split("/", google_cloudfunctions2_function.callable[each.key].service_config[0].service))[0]
  role     = "roles/run.invoker"
  member   = "allUsers"
}
