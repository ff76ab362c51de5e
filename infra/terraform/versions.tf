# Providers. `terraform init` writes .terraform.lock.hcl: commit it, so every deploy uses the same
# provider builds. (These machines cannot download providers: the test command only runs
# `terraform fmt -check` and tests/test_infra.py, which parses these files.)
terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.10, < 8.0"
    }
    # Only for what google does not have: the Firebase project and the service agents' identities.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.10, < 8.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.7" # excludes with ** globs
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
