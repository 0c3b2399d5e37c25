{{/* The gateway's objects are named and labelled by charts/common, from the gateway's values. */}}
{{- define "gateway.fullname" -}}
{{- include "common.fullname" (dict "component" (include "common.component.gateway" .) "values" .Values "context" .) }}
{{- end }}

{{- define "gateway.selectorLabels" -}}
{{- include "common.selectorLabels" (dict "component" (include "common.component.gateway" .) "values" .Values "context" .) }}
{{- end }}

{{- define "gateway.labels" -}}
{{- include "common.labels" (dict "component" (include "common.component.gateway" .) "values" .Values "context" .) }}
{{- end }}

{{- define "gateway.image" -}}
{{- include "common.image" (dict "image" .Values.image "tag" .Chart.AppVersion "global" .Values.global "name" "gateway" "path" (ternary "gateway.image" "image" (eq (include "gateway.inUmbrella" .) "true"))) }}
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

{{- define "gateway.checkBufferedBytes" -}}
{{- $config := .Values.config }}
{{- if lt (int64 $config.maxBufferedBytes) (int64 $config.maxRequestBytes) }}
{{- fail (printf "gateway.config.maxBufferedBytes (%d) must be at least gateway.config.maxRequestBytes (%d): a request body of the largest allowed size could never be read, and the gateway would refuse to start. Raise maxBufferedBytes or lower maxRequestBytes." (int64 $config.maxBufferedBytes) (int64 $config.maxRequestBytes)) }}
{{- end }}
{{- if lt (int64 $config.maxBufferedBytes) (int64 $config.fetchMaxBytes) }}
{{- fail (printf "gateway.config.maxBufferedBytes (%d) must be at least gateway.config.fetchMaxBytes (%d): an image download of the largest allowed size could never be held, and the gateway would refuse to start. Raise maxBufferedBytes or lower fetchMaxBytes." (int64 $config.maxBufferedBytes) (int64 $config.fetchMaxBytes)) }}
{{- end }}
{{- end }}

{{- define "gateway.wiringConfigMap" -}}
{{- include "common.gatewayWiringConfigMap" (dict "component" (include "common.component.gateway" .) "values" .Values "context" .) }}
{{- end }}

{{/* Inside the keras-serving umbrella chart (a subchart's templates live under charts/), the
     umbrella renders the model server target from the model server's own values. */}}
{{- define "gateway.inUmbrella" -}}
{{- if contains "/charts/" .Template.BasePath }}true{{ end }}
{{- end }}

{{/* A list of numbers as "80,443" (never "80.0" or "8e+01"). */}}
{{- define "gateway.intList" -}}
{{- $out := list }}
{{- range . }}{{ $out = append $out (int64 . | toString) }}{{ end }}
{{- join "," $out }}
{{- end }}
