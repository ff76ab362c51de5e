# The keyring (signing keys for access tokens, HMAC keys for device ids, refresh tokens and alert
# action tokens) lives in Secret Manager and reaches the functions as MYDEVICES_KEYS_JSON.
# Terraform creates only the secret, never a version: key material must not land in the Terraform
# state. Add versions with gcloud (docs/deploy.md); a new version whose lists start with the new
# keys, followed by the old ones, rotates without signing anyone out.

resource "google_secret_manager_secret" "keyring" {
  secret_id = var.keyring_secret_id

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

# Only the functions that sign or verify something read it; the Firestore trigger does not.
resource "google_secret_manager_secret_iam_member" "keyring_readers" {
  for_each = toset(local.keyring_readers)

  secret_id = google_secret_manager_secret.keyring.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.fn[each.value].member
}
