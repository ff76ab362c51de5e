# The APIs the deployment uses. They stay on when this configuration is destroyed: other things in
# the project may use them too.
locals {
  services = toset([
    "artifactregistry.googleapis.com", # function images
    "cloudbuild.googleapis.com",       # builds the functions from source
    "cloudfunctions.googleapis.com",   # Cloud Functions (2nd gen)
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",  # the deleted-users sweep (deleted_users.tf)
    "eventarc.googleapis.com",        # the Firestore trigger
    "fcm.googleapis.com",             # pushes (firebase-admin messaging)
    "firebase.googleapis.com",        # the Firebase project
    "firebasehosting.googleapis.com", # the web page (`firebase deploy --only hosting`)
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",  # signBlob: firebase-admin's custom tokens without a key file
    "identitytoolkit.googleapis.com", # Firebase Auth (ID tokens, revocation checks)
    "pubsub.googleapis.com",
    "run.googleapis.com",           # 2nd gen functions are Cloud Run services
    "secretmanager.googleapis.com", # the keyring
    "storage.googleapis.com",       # function source, optional GeoIP database
  ])
}

resource "google_project_service" "enabled" {
  for_each = local.services

  service            = each.value
  disable_on_destroy = false
}

# Service agents are created lazily by Google; IAM bindings on them fail until they exist.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta
  service  = "pubsub.googleapis.com"

  depends_on = [google_project_service.enabled]
}

resource "google_project_service_identity" "eventarc" {
  provider = google-beta
  service  = "eventarc.googleapis.com"

  depends_on = [google_project_service.enabled]
}

# Google grants the Eventarc service agent its role lazily, and the grant takes minutes to work: on a
# fresh project the Firestore trigger's first apply fails with "Permission denied while using the
# Eventarc Service Agent" (terraform-provider-google#25294, #14584). So grant the role explicitly (a
# no-op where Google already did) and give it time before on-session-written is created.
resource "google_project_iam_member" "eventarc_agent" {
  project = var.project_id
  role    = "roles/eventarc.serviceAgent"
  member  = google_project_service_identity.eventarc.member
}

resource "time_sleep" "eventarc_agent_grant" {
  create_duration = "120s" # IAM changes usually apply within 2 minutes

  depends_on = [google_project_iam_member.eventarc_agent]
}

resource "google_firebase_project" "this" {
  count    = var.enable_firebase ? 1 : 0
  provider = google-beta
  project  = var.project_id

  depends_on = [google_project_service.enabled]
}

# The project's default Hosting site (its id is the project id), which `firebase deploy --only
# hosting` deploys to (firebase.json names no site). A project made with the Firebase API has none
# until someone opens Hosting in the console, and then the deploy stops to ask. Where the site
# already exists, import it (docs/deploy.md).
resource "google_firebase_hosting_site" "default" {
  provider = google-beta
  project  = var.project_id
  site_id  = var.project_id

  depends_on = [google_firebase_project.this, google_project_service.enabled]
}
