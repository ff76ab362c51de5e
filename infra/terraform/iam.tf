# One service account per function, each with only what its code does:
#
#   api                 Firestore (sessions), Auth read (verify_id_token with check_revoked looks the
#                       user up), the keyring, signBlob as itself (firebase-admin's custom tokens at
#                       login), and the GeoIP bucket when geoip_db is gs://.
#   on-session-written  publish to session-events, Firestore (the outbox of unpublished events),
#                       receive Eventarc events, invoke itself (it is its trigger's identity).
#   send-session-push   Firestore (push tokens, de-duplication), FCM, the keyring (alert action
#                       tokens), invoke itself (it is its push subscription's identity).
#   callables           Firestore and the keyring (the device id check), one account each.
#   build               Cloud Build for the function images (instead of the default compute account).

locals {
  project_roles = merge(
    {
      "api"                = ["roles/datastore.user", "roles/firebaseauth.viewer"]
      "on-session-written" = ["roles/datastore.user", "roles/eventarc.eventReceiver"]
      "send-session-push"  = ["roles/datastore.user", "roles/firebasecloudmessaging.admin"]
      "publish-app-events" = ["roles/datastore.user"] # reads a copied-token incident's record
      "deliver-webhook"    = ["roles/datastore.user"] # counts failures, keeps dead deliveries
      # support.tf: the agent's and the customer's Auth lookups, sessions, the audit
      "support-api" = ["roles/datastore.user", "roles/firebaseauth.viewer"]
    },
    { for name, _ in local.callables : name => ["roles/datastore.user"] },
    { "sweep-deleted-users" = ["roles/datastore.user", "roles/firebaseauth.viewer"] }, # lists users, asks Auth, erases
  )

  keyring_readers = concat(["api", "send-session-push", "deliver-webhook", "support-api"], keys(local.callables)) # deliver-webhook: CAEP SETs

  project_role_grants = {
    for grant in flatten([
      for account, roles in local.project_roles : [for role in roles : { account = account, role = role }]
    ]) : "${grant.account} ${grant.role}" => grant
  }

  geoip_bucket = var.geoip_db == "" ? "" : split("/", trimprefix(var.geoip_db, "gs://"))[0]
}

resource "google_service_account" "fn" {
  for_each = local.functions

  account_id   = "md-${replace(each.key, "_", "-")}"
  display_name = "My Devices function ${each.key}"
  description  = "Runtime identity of the ${each.key} function (entry point ${each.value})."

  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "build" {
  account_id   = "md-build"
  display_name = "My Devices function builds"

  depends_on = [google_project_service.enabled]
}

resource "google_project_iam_member" "fn" {
  for_each = local.project_role_grants

  project = var.project_id
  role    = each.value.role
  member  = google_service_account.fn[each.value.account].member
}

resource "google_project_iam_member" "build" {
  for_each = toset(["roles/cloudbuild.builds.builder", "roles/logging.logWriter", "roles/artifactregistry.writer"])

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}

# firebase-admin signs custom tokens through the IAM signBlob API as the api's own account.
resource "google_service_account_iam_member" "api_signs_as_itself" {
  service_account_id = google_service_account.fn["api"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.fn["api"].member
}

resource "google_pubsub_topic_iam_member" "trigger_publishes" {
  topic  = google_pubsub_topic.session_events.id
  role   = "roles/pubsub.publisher"
  member = google_service_account.fn["on-session-written"].member
}

resource "google_storage_bucket_iam_member" "api_reads_geoip" {
  count = local.geoip_bucket == "" ? 0 : 1

  bucket = local.geoip_bucket
  role   = "roles/storage.objectViewer"
  member = google_service_account.fn["api"].member
}
