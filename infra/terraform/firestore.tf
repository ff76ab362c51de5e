# Firestore: the database, and its indexes and TTL policies taken from ../../firestore.indexes.json,
# the file `firebase deploy --only firestore` also reads: one source of truth for both tools.
# tests/platform/test_infra.py checks that the indexes the code's queries need (functions/mydevices/indexes.py)
# are in that file and that everything below comes from it.

locals {
  firestore_config = jsondecode(file("${path.module}/../../firestore.indexes.json"))

  # "sessions:status:ASCENDING,lastActiveAt:DESCENDING" => the index as the file spells it
  composite_indexes = {
    for index in local.firestore_config.indexes :
    "${index.collectionGroup}:${join(",", [for field in index.fields : "${field.fieldPath}:${lookup(field, "order", lookup(field, "arrayConfig", ""))}"])}" => index
  }

  # "sessions.expireAt" => the override (a TTL policy when "ttl": true; "indexes": [] drops the
  # single-field indexes, which a TTL timestamp field never needs)
  field_overrides = {
    for field in local.firestore_config.fieldOverrides :
    "${field.collectionGroup}.${field.fieldPath}" => field
  }
}

resource "google_firestore_database" "main" {
  name        = "(default)"
  location_id = var.firestore_location
  type        = "FIRESTORE_NATIVE"

  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON" # `terraform destroy` never deletes the sessions

  depends_on = [google_project_service.enabled]
}

resource "google_firestore_index" "composite" {
  for_each = local.composite_indexes

  database    = google_firestore_database.main.name
  collection  = each.value.collectionGroup
  query_scope = lookup(each.value, "queryScope", "COLLECTION")

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value.fieldPath
      order        = lookup(fields.value, "order", null)
      array_config = lookup(fields.value, "arrayConfig", null)
    }
  }
}

resource "google_firestore_field" "overrides" {
  for_each = local.field_overrides

  database   = google_firestore_database.main.name
  collection = each.value.collectionGroup
  field      = each.value.fieldPath

  # Documents are deleted (within about a day) once this timestamp has passed.
  dynamic "ttl_config" {
    for_each = lookup(each.value, "ttl", false) ? [1] : []
    content {}
  }

  # Present in the file: exactly these single-field indexes (an empty list: none).
  dynamic "index_config" {
    for_each = contains(keys(each.value), "indexes") ? [each.value.indexes] : []
    content {
      dynamic "indexes" {
        for_each = index_config.value
        content {
          query_scope  = lookup(indexes.value, "queryScope", null)
          order        = lookup(indexes.value, "order", null)
          array_config = lookup(indexes.value, "arrayConfig", null)
        }
      }
    }
  }
}
