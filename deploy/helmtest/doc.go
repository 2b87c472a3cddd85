//go:build deploy

// Package helmtest proves the Helm chart in deploy/helm/token-service: it renders each
// ci/*-values.yaml with Helm's Go SDK at an explicit Kubernetes version, strict-decodes every
// document into k8s.io/api types, checks the chart's rules on the objects, and applies them with
// server-side dry run and strict field validation to a real kube-apiserver (with etcd) that it
// starts on 127.0.0.1. It is a module of its own, like deploy/, so Helm and Kubernetes stay out of
// the service's go.mod; the build tag keeps it out of every plain `go test`.
package helmtest
