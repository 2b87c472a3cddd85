//go:build deploy

// Package helmtest proves the Helm chart in deploy/helm/token-service: it renders each
// ci/*-values.yaml with Helm's Go SDK at an explicit Kubernetes version, strict-decodes every
// document into k8s.io/api types, checks the chart's rules on the objects, and applies them with
// server-side dry run and strict field validation to a real kube-apiserver (with etcd) that it
// starts on 127.0.0.1. The deploy build tag keeps it out of every plain `go test` and keeps Helm and
// Kubernetes out of the binary (they are in go.mod only for this package).
package helmtest
