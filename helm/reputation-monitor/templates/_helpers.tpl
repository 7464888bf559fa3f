{{/* Names and labels, the usual way. */}}
{{- define "repmon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "repmon.fullname" -}}
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

{{- define "repmon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "repmon.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "repmon.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "repmon.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: daemon
{{- end }}

{{- define "repmon.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "repmon.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "repmon.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret holding the admin token and webhook key, if any. */}}
{{- define "repmon.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if or .Values.secrets.adminToken .Values.secrets.webhookSecret }}
{{- include "repmon.fullname" . }}
{{- end }}
{{- end }}

{{- define "repmon.rulesConfigMapName" -}}
{{- default (printf "%s-rules" (include "repmon.fullname" .)) .Values.rules.existingConfigMap }}
{{- end }}

{{- define "repmon.sqlite" -}}
{{- if hasPrefix "sqlite:" .Values.config.stateUrl }}true{{ end }}
{{- end }}

{{/* Settings that cannot work: refuse to render, saying what to do instead. */}}
{{- define "repmon.validate" -}}
{{- if not .Values.config.queueUrls }}
{{- fail "config.queueUrls is required: the SQS queue URLs to consume (REPMON_QUEUE_URLS)" }}
{{- end }}
{{- if and (include "repmon.sqlite" .) (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "replicaCount is %d but config.stateUrl is SQLite (%s), which one replica owns: use config.stateUrl=dynamodb://TABLE for several replicas, or replicaCount=1" (int .Values.replicaCount) .Values.config.stateUrl) }}
{{- end }}
{{- if and (include "repmon.sqlite" .) (not (hasPrefix "sqlite:////var/lib/reputation-monitor/" .Values.config.stateUrl)) }}
{{- fail (printf "config.stateUrl %s is outside the state volume: the root filesystem is read-only, use sqlite:////var/lib/reputation-monitor/NAME.db" .Values.config.stateUrl) }}
{{- end }}
{{- if and .Values.rules.existingConfigMap (or .Values.rules.files (ne (len (.Files.Glob .Values.rules.glob)) 0)) }}
{{- fail "rules.existingConfigMap replaces the chart's rules: leave rules.files empty and put no files under rules.glob" }}
{{- end }}
{{- if and (not .Values.rules.existingConfigMap) (not .Values.rules.presets) (not .Values.rules.files) (eq (len (.Files.Glob .Values.rules.glob)) 0) }}
{{- fail "no rules: set rules.presets=true, give rules.files, or rules.existingConfigMap" }}
{{- end }}
{{- end }}
