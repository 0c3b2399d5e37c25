{{/*
Umbrella-level helpers. Names of the subcharts' objects are computed here the same way the
subcharts compute them (<release>-<name>, or the subchart's fullnameOverride).
*/}}
{{- define "keras-serving.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: keras-serving
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "keras-serving.gatewayName" -}}
{{- default "gateway" .Values.gateway.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "keras-serving.gatewayFullname" -}}
{{- if .Values.gateway.fullnameOverride }}
{{- .Values.gateway.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "keras-serving.gatewayName" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "keras-serving.gatewaySelectorLabels" -}}
app.kubernetes.io/name: {{ include "keras-serving.gatewayName" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "keras-serving.modelServerName" -}}
{{- default "model-server" .Values.modelServer.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "keras-serving.modelServerFullname" -}}
{{- if .Values.modelServer.fullnameOverride }}
{{- .Values.modelServer.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "keras-serving.modelServerName" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "keras-serving.modelServerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "keras-serving.modelServerName" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The `helm test` pod's labels that the gateway NetworkPolicy admits: the release plus a
     component no Deployment of the chart uses, so the peer selects this pod and nothing else. */}}
{{- define "keras-serving.testSelectorLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end }}

{{/* The helm test pod runs the gateway image (it carries gateway.selftest), tagged like the
     gateway Deployment's. */}}
{{- define "keras-serving.gatewayImage" -}}
{{- $image := .Values.gateway.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag | toString) }}
{{- end }}
{{- end }}
