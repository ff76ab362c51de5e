variable "project_id" {
  description = "The Google Cloud project to deploy into (it becomes, or already is, a Firebase project)."
  type        = string
}

variable "region" {
  description = "Where the functions run. Keep it equal to the region in firebase.json's hosting rewrites."
  type        = string
  default     = "us-central1"
}

variable "firestore_location" {
  description = "The Firestore database's location (e.g. nam5, eur3, us-central1). The Firestore trigger lives there too."
  type        = string
  default     = "nam5"
}

variable "enable_firebase" {
  description = "Turn the project into a Firebase project. Set false when it already is one (the API refuses twice)."
  type        = bool
  default     = true
}

variable "keyring_secret_id" {
  description = "Secret Manager secret holding the keyring JSON (MYDEVICES_KEYS_JSON): signing and HMAC keys."
  type        = string
  default     = "mydevices-keyring"
}

variable "keyring_version" {
  description = "Keyring secret version the functions read at instance start: a number pins it, \"latest\" follows rotations."
  type        = string
  default     = "latest"
}

variable "geoip_db" {
  description = "MYDEVICES_GEOIP_DB for the api: gs://BUCKET/OBJECT of a GeoIP2/GeoLite2/DB-IP City .mmdb (the api may read that bucket), or \"\" for no locations."
  type        = string
  default     = ""

  validation {
    condition     = var.geoip_db == "" || can(regex("^gs://[^/]+/.*[^/]$", var.geoip_db))
    error_message = "geoip_db must be gs://BUCKET/OBJECT or empty."
  }
}

variable "trusted_proxies" {
  description = "MYDEVICES_TRUSTED_PROXIES: X-Forwarded-For hops added by our own proxies. Google's front end adds one; Firebase Hosting in front of it adds another."
  type        = number
  default     = 1
}

variable "api_max_instances" {
  description = "Upper bound on api instances (a cost and Firestore-load guard)."
  type        = number
  default     = 20
}

variable "api_concurrency" {
  description = "Requests one api instance serves at once (needs a whole CPU, which the api has)."
  type        = number
  default     = 40
}

variable "push_max_delivery_attempts" {
  description = "Deliveries of one session event to send_session_push before it goes to the dead-letter topic (5-100)."
  type        = number
  default     = 5

  validation {
    condition     = var.push_max_delivery_attempts == floor(var.push_max_delivery_attempts) && var.push_max_delivery_attempts >= 5 && var.push_max_delivery_attempts <= 100
    error_message = "push_max_delivery_attempts must be a whole number from 5 to 100 (Pub/Sub's limits for a dead-letter policy)."
  }
}

variable "app_check" {
  description = "MYDEVICES_APP_CHECK for the api and the callables: off, report (verify X-Firebase-AppCheck and log failures) or enforce (refuse them)."
  type        = string
  default     = "off"
  validation {
    condition     = contains(["off", "report", "enforce"], var.app_check)
    error_message = "app_check must be off, report or enforce."
  }
}

variable "cors_origins" {
  description = "MYDEVICES_CORS_ORIGINS for the api: exact origins (https://app.example.com) of web apps on another origin, which call it with bearer tokens. Cookies stay same-origin."
  type        = list(string)
  default     = []
}

variable "extra_environment" {
  description = "More MYDEVICES_* settings for every function (see docs/configuration.md), e.g. { MYDEVICES_REUSE_POLICY = \"revoke_session\" }."
  type        = map(string)
  default     = {}
}

variable "events_topic" {
  description = "The Pub/Sub topic of session events for the app's backend (MYDEVICES_EVENTS_TOPIC; docs/events.md)."
  type        = string
  default     = "mydevices-events"
}

variable "webhook_endpoints" {
  description = "Names of the webhook endpoints, one ordered push subscription each (webhook-<name>). Their URLs and secrets are in the webhooks secret (MYDEVICES_WEBHOOKS_JSON), never here."
  type        = set(string)
  default     = []
}

variable "webhook_max_attempts" {
  description = "Failed attempts of one webhook delivery before it is dead (kept in deadWebhooks; 5-100)."
  type        = number
  default     = 20

  validation {
    condition     = var.webhook_max_attempts == floor(var.webhook_max_attempts) && var.webhook_max_attempts >= 5 && var.webhook_max_attempts <= 100
    error_message = "webhook_max_attempts must be a whole number from 5 to 100."
  }
}

variable "deleted_users_sweep_schedule" {
  description = "When Cloud Scheduler runs the deleted-users sweep (cron, UTC; docs/data-rights.md)."
  type        = string
  default     = "30 3 * * *"
}

variable "caep_receivers" {
  description = "Names of the CAEP receivers (Shared Signals Framework push), one ordered push subscription each (caep-<name>) getting a session-revoked SET per closed session. Their URLs and audiences are in the caep-receivers secret (MYDEVICES_CAEP_RECEIVERS_JSON), never here."
  type        = set(string)
  default     = []
}

variable "support_api_invokers" {
  description = "IAM members who may invoke the support API (e.g. group:support@example.com); empty: public, each call still needs an agent's Firebase ID token with the mydevicesSupport claim."
  type        = list(string)
  default     = []
}

variable "support_max_auth_age_seconds" {
  description = "How recent a support agent's Firebase sign-in must be (MYDEVICES_SUPPORT_MAX_AUTH_AGE_SECONDS)."
  type        = number
  default     = 3600
}

variable "support_audit_days" {
  description = "How long each support API call's audit record is kept (TTL on supportAudit.expireAt)."
  type        = number
  default     = 400
}
