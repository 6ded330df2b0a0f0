// Package deploy holds the files that run textpulse elsewhere: the
// Prometheus scrape configuration and alert rules (prometheus/), the Grafana
// dashboards and provisioning (grafana/), and the Kubernetes manifests
// (k8s/). Its tests check them against the code: every metric a dashboard
// or alert queries is exported by the consumer, every ClickHouse panel runs
// on the rendered DDL, and the manifests decode strictly into the Kubernetes
// API types and refer to each other and to real configuration keys.
package deploy
