# Providers, pinned to the versions whose schemas tests/platform/test_infra.py checks every block against
# (infra/terraform-schema pins the matching @cdktf packages: bump both together). These machines
# cannot download providers, so no .terraform.lock.hcl is committed yet: the first `terraform init`
# writes it, with the hashes of these exact builds; commit it then (docs/deploy.md).
terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "6.50.0"
    }
    # Only for what google does not have: the Firebase project, its Hosting site and the service
    # agents' identities.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "6.50.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "2.7.1" # excludes with ** globs, output_file_mode
    }
    time = {
      source  = "hashicorp/time"
      version = "0.13.1" # time_sleep: the Eventarc service agent's grant (apis.tf)
    }
  }
}

# With user credentials (`gcloud auth application-default login`) some APIs, Firebase's among them,
# refuse calls that name no quota project: send this project as the one billed for every call
# (the X-Goog-User-Project header), whatever project the login happened to set as its quota project.
provider "google" {
  project               = var.project_id
  region                = var.region
  billing_project       = var.project_id
  user_project_override = true
}

provider "google-beta" {
  project               = var.project_id
  region                = var.region
  billing_project       = var.project_id
  user_project_override = true
}
