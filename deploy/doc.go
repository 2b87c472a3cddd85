//go:build deploy

// Package deploy checks the Dockerfile and docker-compose.yml without a Docker engine: the compose
// file through compose-go (the loader docker compose uses), the Dockerfile through BuildKit's
// parser, and the image's binary built with the Dockerfile's own command and run in an empty root.
// Its files build only with the deploy tag, so those heavy libraries never reach the binary.
package deploy
