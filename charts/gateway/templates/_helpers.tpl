{{/* Names are cut to 63 characters: Kubernetes names and label values allow no more. */}}
{{- define "gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<name>, with no "release contains name" shortcut, so the umbrella chart and the
     other subchart can compute the same name. */}}
{{- define "gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "gateway.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/part-of: keras-serving
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "gateway.image" -}}
{{- $image := .Values.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag | toString) }}
{{- end }}
{{- end }}

{{/* dns:/// makes the gateway's gRPC client resolve every model server pod behind the headless
     Service and balance with round_robin, instead of pinning one connection to one pod. */}}
{{- define "gateway.modelServerTarget" -}}
{{- if .Values.config.modelServerTarget }}
{{- .Values.config.modelServerTarget }}
{{- else }}
{{- printf "dns:///%s-model-server-headless.%s.svc.cluster.local:8500" .Release.Name .Release.Namespace }}
{{- end }}
{{- end }}

{{/* SIGTERM comes only after the preStop sleep, and the kubelet kills the container when
     terminationGracePeriodSeconds (counted from the start of preStop) run out: a drain longer
     than what is left would be cut short with requests in flight. */}}
{{- define "gateway.checkShutdownGrace" -}}
{{- $grace := float64 .Values.config.shutdownGraceSeconds }}
{{- $termination := float64 .Values.terminationGracePeriodSeconds }}
{{- $preStop := float64 .Values.preStopSleepSeconds }}
{{- if gt $grace (subf $termination $preStop) }}
{{- fail (printf "gateway.config.shutdownGraceSeconds (%v) must be at most gateway.terminationGracePeriodSeconds (%v) - gateway.preStopSleepSeconds (%v) = %v: the kubelet kills the gateway when the grace period ends, cutting its drain short. Lower shutdownGraceSeconds or preStopSleepSeconds, or raise terminationGracePeriodSeconds." $grace $termination $preStop (subf $termination $preStop)) }}
{{- end }}
{{- end }}
