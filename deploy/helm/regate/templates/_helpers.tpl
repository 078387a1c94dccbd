{{/* The chart's name, overridable. */}}
{{- define "regate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's objects' base name. */}}
{{- define "regate.fullname" -}}
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

{{- define "regate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "regate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "regate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "regate.labels" -}}
helm.sh/chart: {{ include "regate.chart" . }}
{{ include "regate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "regate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "regate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the master key, and whether the chart creates it. */}}
{{- define "regate.masterKeySecret" -}}
{{- .Values.masterKey.existingSecret | default (printf "%s-master-key" (include "regate.fullname" .)) }}
{{- end }}
{{- define "regate.masterKeySecretKey" -}}
{{- if .Values.masterKey.existingSecret }}{{ .Values.masterKey.existingSecretKey }}{{ else }}master-key{{ end }}
{{- end }}

{{/* The Secret holding DATABASE_URL. */}}
{{- define "regate.databaseSecret" -}}
{{- .Values.database.existingSecret | default (printf "%s-database" (include "regate.fullname" .)) }}
{{- end }}
{{- define "regate.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}database-url{{ end }}
{{- end }}

{{/* The ConfigMap holding the bundle files, empty when there is none. */}}
{{- define "regate.bundleConfigMap" -}}
{{- if .Values.bundle.existingConfigMap }}
{{- .Values.bundle.existingConfigMap }}
{{- else if .Values.bundle.files }}
{{- printf "%s-bundle" (include "regate.fullname" .) }}
{{- end }}
{{- end }}

{{/* Checks of values that would otherwise render a broken release. */}}
{{- define "regate.validate" -}}
{{- $sources := 0 }}
{{- if .Values.bundle.files }}{{ $sources = add1 $sources }}{{ end }}
{{- if .Values.bundle.existingConfigMap }}{{ $sources = add1 $sources }}{{ end }}
{{- if .Values.bundle.url }}{{ $sources = add1 $sources }}{{ end }}
{{- if gt $sources 1 }}
{{- fail "bundle: set at most one of files, existingConfigMap and url" }}
{{- end }}
{{- if and .Values.bundle.url (not (or (hasPrefix "http://" .Values.bundle.url) (hasPrefix "https://" .Values.bundle.url))) }}
{{- fail "bundle.url: want an http:// or https:// bundle-service URL" }}
{{- end }}
{{- if and .Values.masterKey.value .Values.masterKey.existingSecret }}
{{- fail "masterKey: set value or existingSecret, not both" }}
{{- end }}
{{- if and .Values.database.url .Values.database.existingSecret }}
{{- fail "database: set url or existingSecret, not both" }}
{{- end }}
{{- $s := .Values.shutdown }}
{{- $need := add $s.drainDelaySeconds $s.timeoutSeconds }}
{{- if and (not (kindIs "invalid" .Values.terminationGracePeriodSeconds)) (le (int .Values.terminationGracePeriodSeconds) (int $need)) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed shutdown.drainDelaySeconds + shutdown.timeoutSeconds (%v): the kubelet would kill in-flight streams" .Values.terminationGracePeriodSeconds $need) }}
{{- end }}
{{- end }}

{{/* terminationGracePeriodSeconds: given, or drain + timeout + margin. */}}
{{- define "regate.gracePeriod" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add .Values.shutdown.drainDelaySeconds .Values.shutdown.timeoutSeconds .Values.shutdown.graceMarginSeconds }}
{{- else }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}
