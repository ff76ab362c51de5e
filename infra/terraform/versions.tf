# Providers, pinned to the versions whose schemas tests/test_infra.py checks every block against
# (infra/terraform-schema pins the matching @cdktf packages: bump both together). These machines
# cannot download providers, so no .terraform.lock.hcl is committed yet: the first `terraform init`
# writes it, with the hashes of these exact builds; commit it then (README, "Deploy").
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
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}
