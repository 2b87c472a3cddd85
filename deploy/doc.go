// Package deploy checks the Dockerfile and docker-compose.yml without a Docker engine: the compose
// file through compose-go (the loader docker compose uses), the Dockerfile through BuildKit's
// parser, and the image's binary built with the Dockerfile's own command and run in an empty root.
// It is a module of its own so that those heavy libraries stay out of the service's go.mod.
package deploy
