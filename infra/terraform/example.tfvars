# cp example.tfvars prod.tfvars, edit, then: terraform apply -var-file=prod.tfvars
project_id         = "my-project"
region             = "us-central1" # = firebase.json's hosting rewrites
firestore_location = "nam5"
enable_firebase    = true # false when the project already is a Firebase project
# geoip_db         = "gs://my-project-geoip/dbip-city-lite.mmdb"
# trusted_proxies  = 1
