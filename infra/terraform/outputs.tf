output "api_url" {
  description = "The API's base URL (append /v1/sessions ...); Firebase Hosting's rewrites reach the same function."
  value       = google_cloudfunctions2_function.api.url
}

output "callable_urls" {
  description = "The Firebase callables' URLs (the SDK finds them by name and region)."
  value       = { for name, fn in google_cloudfunctions2_function.callable : name => fn.url }
}

output "jwks_url" {
  description = "Public keys for backends that verify access tokens locally."
  value       = "${google_cloudfunctions2_function.api.url}/.well-known/jwks.json"
}

output "keyring_secret" {
  description = "Add keyring versions here (docs/deploy.md)."
  value       = google_secret_manager_secret.keyring.id
}

output "session_events_dead_letters" {
  description = "Pull dead-lettered session events from this subscription."
  value       = google_pubsub_subscription.session_events_dead_pull.id
}
