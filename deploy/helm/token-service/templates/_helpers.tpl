{{/* The chart's name, or nameOverride. */}}
{{- define "token-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource names: fullnameOverride, else release-chart (the release alone when it contains the chart name). */}}
{{- define "token-service.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "token-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "token-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "token-service.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "token-service.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The Secret the pods mount: the chart's own, or secrets.existingSecret. */}}
{{- define "token-service.secretName" -}}
{{- default (include "token-service.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* The chart's own Secret data: each set credential under its environment variable's name. */}}
{{- define "token-service.secretData" -}}
{{- $s := .Values.secrets }}
{{- $data := dict "LIVEKIT_API_SECRET" $s.livekitApiSecret "LIVEKIT_KEYS" $s.livekitKeys "SERVICE_API_KEYS" $s.serviceApiKeys "AUTH_JWT_SECRET" $s.authJwtSecret }}
{{- if .Values.redis.enabled }}
{{- $_ := set $data "REDIS_URL" .Values.redis.url }}
{{- end }}
{{- range $k, $v := $data }}
{{- if $v }}
{{ $k }}: {{ $v | b64enc | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Secret's keys the pods mount, one line each, sorted. */}}
{{- define "token-service.secretKeys" -}}
{{- $keys := list }}
{{- if .Values.secrets.existingSecret }}
{{- $keys = .Values.secrets.existingSecretKeys }}
{{- if .Values.redis.enabled }}
{{- $keys = append $keys "REDIS_URL" }}
{{- end }}
{{- else }}
{{- $keys = keys (include "token-service.secretData" . | fromYaml) }}
{{- end }}
{{- range ($keys | uniq | sortAlpha) }}
{{ . }}
{{- end }}
{{- end }}

{{/* Pods that run at the least: the autoscaler's minimum, else replicaCount. */}}
{{- define "token-service.minPods" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{/* Rules values.schema.json cannot say: each fails the render with the value to fix. */}}
{{- define "token-service.validate" -}}
{{- $c := .Values.config }}
{{- $s := .Values.secrets }}
{{- if not $c.livekitApiKey }}{{ fail "config.livekitApiKey is required (LIVEKIT_API_KEY)" }}{{ end }}
{{- if not $c.livekitWsUrl }}{{ fail "config.livekitWsUrl is required (LIVEKIT_WS_URL)" }}{{ end }}
{{- if $s.existingSecret }}
{{- if or $s.livekitApiSecret $s.livekitKeys $s.serviceApiKeys $s.authJwtSecret .Values.redis.url }}
{{- fail "secrets.existingSecret is set: leave secrets.livekitApiSecret, livekitKeys, serviceApiKeys, authJwtSecret and redis.url empty and put them in that Secret" }}
{{- end }}
{{- if not (has "LIVEKIT_API_SECRET" $s.existingSecretKeys) }}{{ fail "secrets.existingSecretKeys must include LIVEKIT_API_SECRET" }}{{ end }}
{{- else if not $s.livekitApiSecret }}
{{- fail "secrets.livekitApiSecret is required (LIVEKIT_API_SECRET), or name a secrets.existingSecret" }}
{{- end }}
{{- if .Values.redis.enabled }}
{{- if and (not $s.existingSecret) (not .Values.redis.url) }}{{ fail "redis.enabled is true: redis.url is required (REDIS_URL)" }}{{ end }}
{{- else if or .Values.redis.url .Values.redis.caBundle }}
{{- fail "redis.url or redis.caBundle is set but redis.enabled is false" }}
{{- end }}
{{- $r := .Values.probes.readiness }}
{{- if ge (mul $r.periodSeconds $r.failureThreshold | int) ($c.shutdownDelaySeconds | int) }}
{{- fail (printf "probes.readiness.periodSeconds * failureThreshold (%d) must be below config.shutdownDelaySeconds (%d), so a stopping pod leaves the Service before its listener closes" (mul $r.periodSeconds $r.failureThreshold | int) ($c.shutdownDelaySeconds | int)) }}
{{- end }}
{{- if eq ($c.metricsPort | int) ($c.port | int) }}{{ fail "config.metricsPort must differ from config.port (0 serves /metrics on port)" }}{{ end }}
{{- if and .Values.autoscaling.enabled (gt (.Values.autoscaling.minReplicas | int) (.Values.autoscaling.maxReplicas | int)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- end }}
