{{/* Names are cut to 63 characters: Kubernetes names and label values allow no more. */}}
{{/* The alias (modelServer) becomes .Chart.Name, which is not a valid DNS name: use a fixed one. */}}
{{- define "model-server.name" -}}
{{- default "model-server" .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<name>, with no "release contains name" shortcut, so the umbrella chart and the
     other subchart can compute the same name. */}}
{{- define "model-server.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "model-server.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "model-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "model-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "model-server.labels" -}}
helm.sh/chart: {{ printf "model-server-%s" .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "model-server.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: model-server
app.kubernetes.io/part-of: keras-serving
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}


{{/* "2.21.0" on CPU, "2.21.0-gpu" on GPU, unless a tag or digest is given. */}}
{{- define "model-server.image" -}}
{{- $image := .Values.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else if $image.tag }}
{{- printf "%s:%s" $image.repository ($image.tag | toString) }}
{{- else }}
{{- printf "%s:%s%s" $image.repository .Chart.AppVersion (ternary "-gpu" "" .Values.gpu.enabled) }}
{{- end }}
{{- end }}

{{- define "model-server.modelDir" -}}
{{- printf "/models/%s/%s" .Values.global.model.name (toString .Values.global.model.version) }}
{{- end }}

{{- define "model-server.configEnabled" -}}
{{- if or .Values.metrics.enabled .Values.batching.enabled }}true{{ end }}
{{- end }}
