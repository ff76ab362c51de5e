# The support API (docs/openapi-support.yaml): the app's support agents and its operators' command
# line (infra/support/mydevices-support). A function of its own, so that it can be locked down apart
# from the app's API. Who may use it is decided per call by a Firebase custom claim
# (`mydevicesSupport: true`, functions/mydevices/tokens/support_agent.py says why a claim); IAM may
# restrict who can reach it at all: with support_api_invokers set, only those members may invoke
# it, and callers send their Google identity token in `X-Serverless-Authorization` (Cloud Run reads
# it there), leaving `Authorization` for the agent's Firebase ID token.

resource "google_cloudfunctions2_function" "support_api" {
  name        = "support-api"
  location    = var.region
  description = "My Devices support API (/v1/support/...)"

  build_config {
    runtime         = "python311"
    entry_point     = "support_api"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.fn["support-api"].email
    available_memory                 = "512Mi"
    available_cpu                    = "1"
    max_instance_request_concurrency = 10
    max_instance_count               = 3 # a few agents, not the app's traffic
    timeout_seconds                  = 60
    ingress_settings                 = "ALLOW_ALL"
    environment_variables = merge(local.common_environment, {
      MYDEVICES_SUPPORT_MAX_AUTH_AGE_SECONDS = tostring(var.support_max_auth_age_seconds)
      MYDEVICES_SUPPORT_AUDIT_DAYS           = tostring(var.support_audit_days)
    })
    secret_environment_variables {
      key        = "MYDEVICES_KEYS_JSON" # the device id check every request of ours makes
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

# Public unless support_api_invokers names who may invoke it: each call authenticates itself.
resource "google_cloud_run_service_iam_member" "support_api_public" {
  count    = length(var.support_api_invokers) == 0 ? 1 : 0
  location = google_cloudfunctions2_function.support_api.location
  service  = reverse(split("/", google_cloudfunctions2_function.support_api.service_config[0].service))[0]
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_service_iam_member" "support_api_invokers" {
  for_each = toset(var.support_api_invokers)
  location = google_cloudfunctions2_function.support_api.location
  service  = reverse(split("/", google_cloudfunctions2_function.support_api.service_config[0].service))[0]
  role     = "roles/run.invoker"
  member   = each.value
}
