# The deleted-users sweep (docs/data-rights.md): Python functions cannot be triggered by a Firebase
# Auth deletion, so Cloud Scheduler POSTs to sweep_deleted_users daily; it erases the data of users
# Firebase Auth reports as not found. Private: only the scheduler's own account may invoke it.

resource "google_cloudfunctions2_function" "sweep_deleted_users" {
  name        = "sweep-deleted-users"
  location    = var.region
  description = "Erases the data of deleted Firebase users (a daily sweep)"

  build_config {
    runtime         = "python311"
    entry_point     = "sweep_deleted_users"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    service_account_email = google_service_account.fn["sweep-deleted-users"].email
    available_memory      = "512Mi"
    max_instance_count    = 1           # one sweep at a time: the cursor document is not shared between runs
    timeout_seconds       = 540         # the sweep stops itself after 480 s and resumes on the next run
    ingress_settings      = "ALLOW_ALL" # Cloud Scheduler calls from outside the VPC; IAM keeps it private
    environment_variables = local.common_environment
  }

  depends_on = [google_firebase_project.this, google_project_iam_member.build]
}

resource "google_service_account" "sweep_scheduler" {
  account_id   = "md-sweep-scheduler"
  display_name = "My Devices deleted-users sweep scheduler"
  description  = "Cloud Scheduler's identity: the only caller of sweep-deleted-users."

  depends_on = [google_project_service.enabled]
}

resource "google_cloud_run_service_iam_member" "scheduler_invokes_sweep" {
  location = google_cloudfunctions2_function.sweep_deleted_users.location
  service  = reverse(split("/", google_cloudfunctions2_function.sweep_deleted_users.service_config[0].service))[0]
  role     = "roles/run.invoker"
  member   = google_service_account.sweep_scheduler.member
}

resource "google_cloud_scheduler_job" "sweep_deleted_users" {
  name             = "mydevices-sweep-deleted-users"
  region           = var.region
  description      = "Erase the data of deleted Firebase users (docs/data-rights.md)"
  schedule         = var.deleted_users_sweep_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "600s"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "300s" # a 503 (Auth or Firestore down) is tried again later
    max_backoff_duration = "1800s"
  }

  http_target {
    uri         = google_cloudfunctions2_function.sweep_deleted_users.service_config[0].uri
    http_method = "POST"
    oidc_token {
      service_account_email = google_service_account.sweep_scheduler.email
      audience              = google_cloudfunctions2_function.sweep_deleted_users.service_config[0].uri
    }
  }

  depends_on = [google_project_service.enabled, google_cloud_run_service_iam_member.scheduler_invokes_sweep]
}
